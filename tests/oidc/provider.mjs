// An OpenID provider on loopback for the console's tests: oidc-provider (OpenID Certified), with the
// claims Pro Santé Connect gives under the scope `scope_all` (SubjectNameID, SubjectRefPro).
//
// node provider.mjs ACCOUNTS.json CLIENTS.json [PORT [KEY_ID]]: prints its issuer URL on its first line,
// then serves until its standard input closes. A new signing key each start, named KEY_ID: started
// again on the same port, it is the same issuer with its keys rotated. An account signs in by the authorization request's `login_hint`
// (the tests name who signs in); every scope asked is granted.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const accounts = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const clients = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: process.argv[5] || 'test-key-1', use: 'sig', alg: 'RS256' };

const configuration = {
  clients,
  jwks: { keys: [jwk] },
  scopes: ['openid', 'scope_all'],
  claims: { openid: ['sub'], scope_all: ['SubjectNameID', 'SubjectRefPro', 'given_name', 'family_name'] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['vialflow-test-provider-cookies'] },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
  async findAccount(ctx, id) {
    if (!accounts[id]) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...accounts[id] }; } };
  },
};

const listener = http.createServer();
listener.listen(Number(process.argv[4] || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${listener.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.use(async (ctx, next) => {
    const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
    if (!match) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const accountId = details.params.login_hint;
    if (!accounts[accountId]) {
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, {
        error: 'access_denied', error_description: 'unknown test account' }));
      return;
    }
    const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false }));
  });
  listener.on('request', provider.callback());
  process.stdout.write(`${issuer}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
