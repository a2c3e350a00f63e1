// A Keycloak-shaped identity provider built on oauth2-mock-server, for the
// interoperability test. It serves the realm's JWKS, discovery document and
// token endpoint under /realms/{realm}/, checks password grants against a
// user table, and adds Keycloak's claims (azp, typ, preferred_username,
// resource_access) to the tokens with the server's signing hook.
//
// Environment: OAUTH2_MOCK_SERVER_MODULE (path of the package's entry
// module), REALM, CLIENT_ID, USERS (JSON: {"name": {"password", "roles"}}).
// It prints {"port": N} once listening and stops when stdin closes.
import { pathToFileURL } from 'node:url';

const { OAuth2Server } = await import(pathToFileURL(process.env.OAUTH2_MOCK_SERVER_MODULE).href);
const realm = process.env.REALM;
const clientId = process.env.CLIENT_ID;
const users = JSON.parse(process.env.USERS);
const base = `/realms/${realm}`;

const server = new OAuth2Server(undefined, undefined, {
  endpoints: {
    wellKnownDocument: `${base}/.well-known/openid-configuration`,
    token: `${base}/protocol/openid-connect/token`,
    jwks: `${base}/protocol/openid-connect/certs`,
  },
});
await server.issuer.keys.generate('RS256');
await server.start(0, '127.0.0.1');
const port = server.address().port;
server.issuer.url = `http://127.0.0.1:${port}${base}`;

server.service.on('beforeTokenSigning', (token, req) => {
  const p = token.payload;
  if (p.aud !== undefined) {
    p.typ = 'ID'; // the ID token of the response, marked as Keycloak marks it
    return;
  }
  const name = req.body.username ?? 'johndoe';
  const user = users[name] ?? { roles: [] };
  Object.assign(p, {
    sub: `user-${name}`,
    typ: 'Bearer',
    azp: req.body.client_id,
    aud: 'account',
    preferred_username: name,
    realm_access: { roles: ['default-roles-' + realm] },
    resource_access: { [clientId]: { roles: user.roles } },
  });
});

server.service.on('beforeResponse', (resp, req) => {
  const b = req.body;
  if (b.client_id !== clientId) {
    resp.statusCode = 401;
    resp.body = { error: 'invalid_client', error_description: 'Invalid client or Invalid client credentials' };
  } else if (b.grant_type === 'password' && (users[b.username] === undefined || users[b.username].password !== b.password)) {
    resp.statusCode = 401;
    resp.body = { error: 'invalid_grant', error_description: 'Invalid user credentials' };
  }
});

process.stdout.write(JSON.stringify({ port }) + '\n');
process.stdin.resume();
process.stdin.on('end', async () => {
  await server.stop();
  process.exit(0);
});
