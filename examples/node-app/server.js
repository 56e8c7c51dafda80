// An app for the nodejs buildpack: answers "hello from ccbridge" on $PORT, shows its
// environment at /env (to see what the launcher set up), and stops cleanly on SIGTERM, which is
// how a cell stops an instance.
const http = require('node:http');

const port = Number(process.env.PORT || 8080);

const server = http.createServer((request, response) => {
  if (request.url === '/env') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(`${JSON.stringify(process.env, null, 2)}\n`);
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
