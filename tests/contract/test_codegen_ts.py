"""`trainer codegen ts`: the generated TypeScript compiles with tsc 5 against the real @trpc packages
and WatermelonDB, gives a typed client (wrong inputs are compile errors), and plugs straight into
WatermelonDB's synchronize() types."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from trainer_cli.main import app
from typer.testing import CliRunner

from tests.contract.conftest import CONTRACT_DIR

CLIENT_TS = """\
import { createTRPCClient, httpLink } from '@trpc/client';
import type { SyncPullArgs, SyncPullResult, SyncPushArgs, SyncPushResult } from '@nozbe/watermelondb/sync';
import { Database } from '@nozbe/watermelondb';
import type { AppRouter, ActivitiesRaw } from './generated/router';
import { schema, SCHEMA_VERSION } from './generated/schema';
import { migrations } from './generated/migrations';

const client = createTRPCClient<AppRouter>({ links: [httpLink({ url: 'http://127.0.0.1:1/trpc' })] });

export async function typed(): Promise<void> {
  const args = { lastPulledAt: null, schemaVersion: SCHEMA_VERSION, migration: null };
  const pulled = await client.sync.pullChanges.query(args);
  const timestamp: number = pulled.timestamp;
  const reset: boolean = pulled.resetRequired;
  const first: ActivitiesRaw | undefined = pulled.changes.activities.created[0];
  const day: string = pulled.changes.daily_metrics.updated[0].day;
  const deleted: string[] = pulled.changes.scheduled_workouts.deleted;
  const pushed = await client.sync.pushChanges.mutate({ changes: {}, lastPulledAt: timestamp });
  const rejected: { [table: string]: string[] } | null = pushed.experimentalRejectedIds;
  const profile = await client.user.getProfile.query();
  const email: string = profile.email;
  await client.auth.login.mutate({ email: 'a@example.com', password: 'pw', deviceId: 'phone' });
  void [reset, first, day, deleted, rejected, email];

  // @ts-expect-error lastPulledAt is a number or null
  await client.sync.pullChanges.query({ lastPulledAt: 'yesterday' });
  // @ts-expect-error a push needs its changes
  await client.sync.pushChanges.mutate({ lastPulledAt: 1 });
  // @ts-expect-error login needs a password
  await client.auth.login.mutate({ email: 'a@example.com' });
  // @ts-expect-error there is no such procedure
  await client.sync.pullEverything.query();
  // @ts-expect-error a query is not a mutation
  await client.sync.pullChanges.mutate({ lastPulledAt: null });
  // @ts-expect-error outputs use the camelCase names
  void pulled.reset_required;
  // @ts-expect-error start_time is a number of ms
  const wrong: string = pulled.changes.activities.created[0].start_time;
  void wrong;
}

// The app hands these straight to WatermelonDB's synchronize().
export const pullChanges = async (args: SyncPullArgs): Promise<SyncPullResult> => {
  const { changes, timestamp } = await client.sync.pullChanges.query(args);
  return { changes, timestamp };
};
export const pushChanges = async (args: SyncPushArgs): Promise<SyncPushResult> => {
  const { experimentalRejectedIds } = await client.sync.pushChanges.mutate(args);
  return experimentalRejectedIds ? { experimentalRejectedIds } : {};
};
export const schemaUsed = [schema, migrations, Database];
"""

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "Bundler",
        "skipLibCheck": True,
        "types": [],
        "noUnusedLocals": True,
    },
    "include": ["client.ts", "generated/*.ts"],
}


@pytest.fixture
def workdir(node_modules: Path) -> Iterator[Path]:
    """A scratch folder inside tests/contract, so imports resolve to its node_modules."""
    path = Path(tempfile.mkdtemp(prefix=".codegen-", dir=CONTRACT_DIR))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _tsc(node: str, workdir: Path) -> subprocess.CompletedProcess:
    tsc = CONTRACT_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    return subprocess.run(
        [node, str(tsc), "-p", str(workdir / "tsconfig.json")], capture_output=True, text=True, timeout=300
    )


def test_generated_types_compile_and_type_the_client(node: str, workdir: Path) -> None:
    result = CliRunner().invoke(app, ["codegen", "ts", str(workdir / "generated")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (workdir / "generated").iterdir()) == ["migrations.ts", "router.ts", "schema.ts"]
    (workdir / "client.ts").write_text(CLIENT_TS)
    (workdir / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    proc = _tsc(node, workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # an unused @ts-expect-error is itself an error: prove the checks bite
    (workdir / "client.ts").write_text(CLIENT_TS.replace("'yesterday'", "null", 1))
    proc = _tsc(node, workdir)
    assert proc.returncode != 0 and "Unused '@ts-expect-error' directive" in proc.stdout
