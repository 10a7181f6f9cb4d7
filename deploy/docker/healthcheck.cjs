// Container health check: GET http://127.0.0.1:$PORT<path> and exit 0 on a 2xx, 1 otherwise.
// The path defaults to /healthz (liveness, the image's HEALTHCHECK); compose passes /readyz so
// that `depends_on: service_healthy` waits until Postgres, Redis (and S3) are reachable.
// No curl in the slim image; Node 24 has fetch.
'use strict';
const path = process.argv[2] || '/healthz';
const port = process.env.PORT || '3000';
const timer = setTimeout(() => process.exit(1), 2500);
fetch(`http://127.0.0.1:${port}${path}`)
  .then((res) => process.exit(res.ok ? 0 : 1))
  .catch(() => process.exit(1))
  .finally(() => clearTimeout(timer));
