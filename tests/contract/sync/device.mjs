// One simulated app install: the real WatermelonDB 0.28 `synchronize()` over a LokiJS (in-memory)
// database built from the schema `trainer codegen ts` generated, talking to a live trainer through
// the real @trpc/client v11. pytest drives it with one JSON command per stdin line and reads one
// JSON answer per stdout line, so a test can interleave several devices and server-side writes.
//
// env: TRPC_URL (server), SYNC_SCHEMA_DIR (compiled schema.js/migrations.js), DEVICE_ID
import { createRequire } from 'node:module';
import readline from 'node:readline';
import { createTRPCClient, httpLink, isTRPCClientError } from '@trpc/client';

const require = createRequire(import.meta.url);
const { Database, Model } = require('@nozbe/watermelondb');
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default;
const { synchronize } = require('@nozbe/watermelondb/sync');
const { schema } = require(`${process.env.SYNC_SCHEMA_DIR}/schema.js`);
const { migrations } = require(`${process.env.SYNC_SCHEMA_DIR}/migrations.js`);

const deviceId = process.env.DEVICE_ID;
const errors = [];
// WatermelonDB reports protocol trouble (an id twice, "already exists locally" echoes) via console.error.
console.error = (...args) => errors.push(args.map(String).join(' '));
console.warn = () => {};
console.log = () => {};

const modelClasses = Object.keys(schema.tables).map((table) => {
  const cls = class extends Model {};
  cls.table = table;
  return cls;
});
const adapter = new LokiJSAdapter({ schema, migrations, useWebWorker: false, useIncrementalIndexedDB: false });
const database = new Database({ adapter, modelClasses });

const auth = { token: null };
const client = createTRPCClient({
  links: [
    httpLink({
      url: process.env.TRPC_URL,
      headers: () => (auth.token ? { authorization: `Bearer ${auth.token}` } : {}),
    }),
  ],
});

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const nextCommand = async () => {
  const { value, done } = await lines.next();
  return done ? { op: 'exit' } : JSON.parse(value);
};
const answer = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

const count = (changes) =>
  Object.fromEntries(
    Object.entries(changes).map(([table, e]) => [
      table,
      { created: e.created.length, updated: e.updated.length, deleted: e.deleted.length },
    ]),
  );

/** docs/sync.md: after `resetRequired`, drop synced local rows the full snapshot does not contain. */
async function dropSyncedRecordsMissingFrom(changes) {
  await database.write(async () => {
    const doomed = [];
    for (const [table, entry] of Object.entries(changes)) {
      if (!schema.tables[table]) continue;
      const present = new Set(entry.created.map((raw) => raw.id));
      for (const record of await database.get(table).query().fetch()) {
        if (record._raw._status === 'synced' && !present.has(record.id)) {
          doomed.push(record.prepareDestroyPermanently());
        }
      }
    }
    await database.batch(doomed);
  });
}

async function sync({ pauseBeforePush = false } = {}) {
  const stats = { pulled: null, pushed: null, resetRequired: false };
  const log = {};
  try {
    await synchronize({
      database,
      log,
      pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
        const result = await client.sync.pullChanges.query({ lastPulledAt, schemaVersion, migration });
        stats.pulled = count(result.changes);
        stats.resetRequired = result.resetRequired;
        if (result.resetRequired) await dropSyncedRecordsMissingFrom(result.changes);
        return { changes: result.changes, timestamp: result.timestamp };
      },
      pushChanges: async ({ changes, lastPulledAt }) => {
        stats.pushed = count(changes);
        if (pauseBeforePush) {
          answer({ event: 'paused' });
          await nextCommand(); // {"op": "resume"}
        }
        const result = await client.sync.pushChanges.mutate({ changes, lastPulledAt });
        return result.experimentalRejectedIds ? { experimentalRejectedIds: result.experimentalRejectedIds } : {};
      },
    });
    return { ok: true, ...stats, resolvedConflicts: (log.resolvedConflicts ?? []).length };
  } catch (err) {
    const code = isTRPCClientError(err) ? err.data?.code : undefined;
    return { ok: false, code, message: String(err?.message ?? err), ...stats };
  }
}

const setFields = (record, fields) => {
  for (const [column, value] of Object.entries(fields)) record._setRaw(column, value);
};

async function run(cmd) {
  switch (cmd.op) {
    case 'signin': {
      const call = cmd.register ? client.auth.register : client.auth.login;
      const session = await call.mutate({ email: cmd.email, password: cmd.password, deviceId });
      auth.token = session.accessToken;
      return { userId: session.user.id };
    }
    case 'create': {
      const record = await database.write(() =>
        database.get(cmd.table).create((r) => {
          if (cmd.id) r._raw.id = cmd.id;
          setFields(r, cmd.fields ?? {});
        }),
      );
      return { id: record.id };
    }
    case 'update': {
      await database.write(async () => {
        const record = await database.get(cmd.table).find(cmd.id);
        await record.update((r) => setFields(r, cmd.fields));
      });
      return { ok: true };
    }
    case 'delete': {
      await database.write(async () => (await database.get(cmd.table).find(cmd.id)).markAsDeleted());
      return { ok: true };
    }
    case 'sync':
      return sync(cmd);
    case 'dump': {
      const dump = {};
      for (const table of cmd.tables ?? Object.keys(schema.tables)) {
        const records = await database.get(table).query().fetch();
        dump[table] = Object.fromEntries(records.map((r) => [r.id, { ...r._raw }]));
      }
      return dump;
    }
    case 'errors':
      return { errors: errors.splice(0) };
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

answer({ ready: true });
for (;;) {
  const cmd = await nextCommand();
  if (cmd.op === 'exit') break;
  try {
    answer(await run(cmd));
  } catch (err) {
    answer({ failed: String(err?.stack ?? err) });
  }
}
process.exit(0);
