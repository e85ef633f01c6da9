// A real OpenID Connect provider (node oidc-provider) for Gatehouse's social-login tests.
// Never deploy it: the login page accepts any name and password, and /__test/ lets the test
// change accounts, swap the next ID token and shift the clock of ID tokens.
//
// Env: PORT (0 or unset: any free port), CLIENTS (JSON list of {client_id, client_secret,
// redirect_uris}). Prints "ready http://localhost:PORT" on stdout once it serves, and exits
// when its stdin closes, so a crashed test run leaves no provider behind.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const realNow = Date.now;
const state = { accounts: new Map(), swapIdToken: null, clockOffset: 0 };

function defaultClaims(id) {
  return {
    sub: id,
    email: `${id}@example.com`,
    email_verified: true,
    name: id,
    preferred_username: id,
  };
}

// Claims set by the test replace the defaults one by one; null removes a claim.
function claimsOf(id) {
  const claims = { ...defaultClaims(id), ...state.accounts.get(id), sub: id };
  return Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== null));
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

const control = {
  reset() {
    state.accounts.clear();
    state.swapIdToken = null;
    state.clockOffset = 0;
  },
  'swap-id-token'(body) {
    state.swapIdToken = body.id_token;
  },
  clock(body) {
    state.clockOffset = Number(body.offset);
  },
};

async function testControl(ctx, next) {
  if (!ctx.path.startsWith('/__test/')) return next();
  const [action, id] = ctx.path.slice('/__test/'.length).split('/');
  if (ctx.method !== 'POST') ctx.throw(405);
  const body = await readJson(ctx.req);
  if (action === 'accounts' && id) {
    state.accounts.set(decodeURIComponent(id), body);
  } else if (Object.hasOwn(control, action) && !id) {
    control[action](body);
  } else {
    ctx.throw(404);
  }
  ctx.body = { ok: true };
}

// The next token response carries the swapped-in ID token instead of its own.
async function swapIdToken(ctx, next) {
  await next();
  if (ctx.path === '/token' && state.swapIdToken && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: state.swapIdToken };
    state.swapIdToken = null;
  }
}

// Only ID tokens see the shifted clock: codes, cookies and access tokens keep real time, so
// the flow completes and the ID token's iat/exp are the one thing wrong.
function shiftIdTokenClock(provider) {
  const { issue } = provider.IdToken.prototype;
  provider.IdToken.prototype.issue = async function issueOnShiftedClock(...args) {
    if (!state.clockOffset) return issue.apply(this, args);
    Date.now = () => realNow() + state.clockOffset * 1000;
    try {
      return await issue.apply(this, args);
    } finally {
      Date.now = realNow;
    }
  };
}

const clients = JSON.parse(process.env.CLIENTS ?? '[]').map((client) => ({
  client_id: client.client_id,
  client_secret: client.client_secret,
  redirect_uris: client.redirect_uris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
}));

// A fresh key per run: nothing signed by a previous run verifies.
function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'RS256' };
}

const server = createServer();
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const issuer = `http://localhost:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true }, // v9 knows only S256
    responseTypes: ['code'],
    scopes: ['openid', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    features: { devInteractions: { enabled: true } },
    ttl: { IdToken: 600 }, // short, so a clock offset of -3600 yields an expired ID token
    findAccount: (ctx, id) => ({ accountId: id, claims: () => claimsOf(id) }),
  });
  shiftIdTokenClock(provider);
  provider.use(testControl);
  provider.use(swapIdToken);
  server.on('request', provider.callback());
  process.stdout.write(`ready ${issuer}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
