// Socket.IO 4.8 peer for `progress-hub bench --target socketio`.
//
// One process, the default in-memory adapter, WebSocket transport only.
// Viewers emit `join` (room name, acked) to enter a room; producers emit
// `progress` events with an ack: the server acks each one and broadcasts it
// to the event's room with `io.to(room).emit("progress", data)`, adding an
// offset and a server timestamp like the hub does.
//
// Listens on 127.0.0.1 (port from PORT, default 0 = any free port) and
// prints `listening on 127.0.0.1:PORT` once ready. SIGTERM/SIGINT: exit.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const httpServer = http.createServer((req, res) => {
  res.writeHead(404).end();
});
const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 1e6,
});

let offset = 0;

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room === "string") socket.join(room);
    if (typeof ack === "function") ack();
  });
  socket.on("progress", (data, ack) => {
    offset += 1;
    if (data && typeof data.room === "string") {
      data.offset = offset;
      data.timestamp = Date.now();
      io.to(data.room).emit("progress", data);
    }
    if (typeof ack === "function") ack({ offset });
  });
});

httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  console.log(`listening on ${address}:${port}`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
