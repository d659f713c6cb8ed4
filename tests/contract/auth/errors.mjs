// Error shapes as the app sees them through @trpc/client: a TRPCClientError whose data carries the
// tRPC code, the HTTP status and (for validation) the issues, never a JSON SyntaxError or a 500.
// usage: node auth/errors.mjs single|batch|stream
import { failure, makeClient, report, uniqueEmail } from './lib.mjs';

const kind = process.argv[2] ?? 'batch';
const auth = { token: null };
const client = makeClient(kind, auth);
const email = uniqueEmail(`errors-${kind}`);
const password = 'correct horse battery';
const out = { kind };

out.noToken = await failure(client.user.getProfile.query());
auth.token = 'not.a.jwt';
out.forgedToken = await failure(client.user.getProfile.query());
auth.token = null;

const registered = await client.auth.register.mutate({ email, password });
out.duplicate = await failure(client.auth.register.mutate({ email: email.toUpperCase(), password }));
out.shortPassword = await failure(client.auth.register.mutate({ email: uniqueEmail('short'), password: 'short' }));
out.badEmail = await failure(client.auth.register.mutate({ email: 'not-an-email', password }));
out.wrongPassword = await failure(client.auth.login.mutate({ email, password: 'wrong password!' }));
out.unknownEmail = await failure(client.auth.login.mutate({ email: uniqueEmail('ghost'), password }));
out.unknownRefresh = await failure(client.auth.refresh.mutate({ refreshToken: 'never-issued' }));

auth.token = registered.accessToken;
out.wrongType = await failure(client.user.updateSettings.mutate({ hrMax: 'fast' }));
out.unknownKey = await failure(client.user.updateSettings.mutate({ heartRateMax: 190 }));
out.crossField = await failure(client.user.updateSettings.mutate({ hrMax: 110, hrRest: 110 }));
out.unknownProcedure = await failure(client.user.noSuchThing.query());
out.queryAsMutation = await failure(client.user.getProfile.mutate());
out.mutationAsQuery = await failure(client.user.updateSettings.query({ units: 'metric' }));

// A batch where one call fails and the others succeed (HTTP 207 on the wire).
const mixed = await Promise.allSettled([
  client.user.getProfile.query(),
  client.user.updateSettings.mutate({ hrMax: 'fast' }),
  client.user.noSuchThing.query(),
  client.user.updateSettings.mutate({ hrMax: 185 }),
]);
out.mixed = mixed.map((r) => (r.status === 'fulfilled' ? { kind: 'ok' } : { kind: 'error', code: r.reason?.data?.code }));

report(out);
