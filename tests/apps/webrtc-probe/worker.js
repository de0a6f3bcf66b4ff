// Reports the types of the WebRTC constructors in a worker; a worker named "nested" asks a
// worker of its own and reports both.
const own = [typeof self.RTCPeerConnection, typeof self.webkitRTCPeerConnection];
if (self.name === "nested") {
  const inner = new Worker("worker.js");
  inner.onmessage = (event) => postMessage(own.concat(event.data));
} else {
  postMessage(own);
}
