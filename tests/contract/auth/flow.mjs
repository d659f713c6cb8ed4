// The app's sign-in life cycle through a real @trpc/client: register, log in, read and change the
// profile, refresh, then replay a spent refresh token and watch the whole session family die.
// usage: node auth/flow.mjs single|batch|stream
import { failure, makeClient, report, uniqueEmail } from './lib.mjs';

const kind = process.argv[2] ?? 'batch';
const auth = { token: null };
const client = makeClient(kind, auth);
const email = uniqueEmail(`flow-${kind}`);
const password = 'correct horse battery';
const out = { kind, email };

const registered = await client.auth.register.mutate({ email, password, deviceId: `contract-${kind}` });
out.registered = { email: registered.user.email, tokenType: registered.tokenType };

const session = await client.auth.login.mutate({ email, password });
out.loginHasTokens = typeof session.accessToken === 'string' && typeof session.refreshToken === 'string';
auth.token = session.accessToken;

const profile = await client.user.getProfile.query();
out.profile = { email: profile.email, id: profile.id, timezone: profile.settings.timezone };

// Two queries and a mutation issued together: batched into one request by httpBatchLink.
const [again, updated, third] = await Promise.all([
  client.user.getProfile.query(),
  client.user.updateSettings.mutate({ hrMax: 190, hrRest: 50, units: 'imperial' }),
  client.user.getProfile.query(),
]);
out.concurrentSameUser = again.id === profile.id && third.id === profile.id;
out.updated = { hrMax: updated.settings.hrMax, hrRest: updated.settings.hrRest, units: updated.settings.units };
out.reset = (await client.user.updateSettings.mutate({ units: null })).settings.units;

// Refresh: a new pair that works; the old refresh token is now spent.
const refreshed = await client.auth.refresh.mutate({ refreshToken: session.refreshToken });
out.rotated = refreshed.refreshToken !== session.refreshToken && refreshed.accessToken !== session.accessToken;
auth.token = refreshed.accessToken;
out.afterRefresh = (await client.user.getProfile.query()).email;

// Replay the spent refresh token (as a thief with a copy would).
out.replay = await failure(client.auth.refresh.mutate({ refreshToken: session.refreshToken }));
// Every token of that sign-in is now dead: the newest refresh token and the newest access token.
out.newestRefreshAfterReplay = await failure(client.auth.refresh.mutate({ refreshToken: refreshed.refreshToken }));
out.newestAccessAfterReplay = await failure(client.user.getProfile.query());

// The first sign-in (register) is another family and still works.
auth.token = registered.accessToken;
out.otherFamily = (await client.user.getProfile.query()).email;
const otherRefresh = await client.auth.refresh.mutate({ refreshToken: registered.refreshToken });
out.otherFamilyRefresh = typeof otherRefresh.accessToken === 'string';

// Sign out: the session's access token stops working.
auth.token = otherRefresh.accessToken;
await client.auth.logout.mutate();
out.afterLogout = await failure(client.user.getProfile.query());

report(out);
