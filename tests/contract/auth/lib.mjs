// Shared by the auth contract scripts: a real @trpc/client v11 pointed at a live trainer server.
import {
  createTRPCClient,
  httpBatchLink,
  httpBatchStreamLink,
  httpLink,
  isTRPCClientError,
} from '@trpc/client';

export const TRPC_URL = process.env.TRPC_URL;
if (!TRPC_URL) {
  throw new Error('TRPC_URL is not set (the pytest fixture passes it)');
}

const LINKS = { single: httpLink, batch: httpBatchLink, stream: httpBatchStreamLink };

/** A client using one link kind; `auth.token` is read on every request, as an app's token store would be. */
export function makeClient(kind, auth = { token: null }) {
  const link = LINKS[kind];
  if (!link) throw new Error(`unknown link kind ${kind}`);
  return createTRPCClient({
    links: [
      link({
        url: TRPC_URL,
        headers: () => (auth.token ? { authorization: `Bearer ${auth.token}` } : {}),
      }),
    ],
  });
}

/** What the app can see of a failure: the class, the message and the error's data. */
export function describeError(err) {
  if (!isTRPCClientError(err)) {
    return { kind: 'other', name: err?.name, message: String(err?.message ?? err) };
  }
  return {
    kind: 'TRPCClientError',
    message: err.message,
    code: err.data?.code,
    httpStatus: err.data?.httpStatus,
    path: err.data?.path,
    issues: err.data?.issues,
    shapeCode: err.shape?.code,
  };
}

/** Run a call that should fail; its error as described above (or {kind: "ok"} if it did not fail). */
export async function failure(promise) {
  try {
    const value = await promise;
    return { kind: 'ok', value };
  } catch (err) {
    return describeError(err);
  }
}

export function uniqueEmail(prefix) {
  return `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

/** The one line of JSON the pytest side reads. */
export function report(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}
