// Tells the page that opened or framed this document whether it found a working
// RTCPeerConnection in its own globals (probe.js waits for the message).
(() => {
  const works = (C) => {
    if (typeof C !== "function") return false;
    try {
      new C().close();
      return true;
    } catch (_) {
      return false;
    }
  };
  const probe = new URLSearchParams(location.search).get("probe");
  const working = [window.savedInFrame, window.RTCPeerConnection, window.webkitRTCPeerConnection]
    .some(works);
  window.reported = true;
  (window.opener || window.parent).postMessage({ probe, working }, "*");
})();
