// An app for the nodejs buildpack: answers "hello from ccbridge" on $PORT, shows its
// environment at /env (to see what the launcher set up), kills itself with SIGKILL at /kill (a
// crash to watch the platform report and repair, without hunting for the right process), and
// stops cleanly on SIGTERM, which is how a cell stops an instance.
const http = require('node:http');

const port = Number(process.env.PORT || 8080);

const server = http.createServer((request, response) => {
  if (request.url === '/env') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(`${JSON.stringify(process.env, null, 2)}\n`);
    return;
  }
  if (request.url === '/kill') {
    // The answer goes out first; then the process dies as `kill -9` would make it.
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
    response.end(`instance ${process.env.CF_INSTANCE_INDEX ?? '?'} killing itself (SIGKILL)\n`, () => {
      console.log('node-app killing itself with SIGKILL');
      process.kill(process.pid, 'SIGKILL');
    });
    return;
  }
  response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  response.end('hello from ccbridge\n');
});

server.listen(port, () => {
  console.log(`node-app listening on port ${port}`);
});

process.on('SIGTERM', () => {
  console.log('node-app received SIGTERM, exiting');
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
