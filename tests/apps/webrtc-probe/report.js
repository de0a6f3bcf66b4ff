// Tells the page that opened or framed this document whether it found a working
// RTCPeerConnection in its own globals (probe.js waits for the message).
(async () => {
  const probe = new URLSearchParams(location.search).get("probe");
  const working = await webrtcWorks(window.savedInFrame) || await webrtcWorks(window);
  window.reported = true;
  (window.opener || window.parent).postMessage({ probe, working }, "*");
})();
