// webrtcWorks(target) resolves to true when `target` (a window, or a constructor) has a
// working WebRTC: a peer connection whose data channel's offer gathers an ICE candidate, the
// first step towards any address. The function refers to nothing outside itself: its source
// is put into the srcdoc, blob:, data: and javascript: documents the probe makes.
async function webrtcWorks(target) {
  const gathers = async (C) => {
    if (typeof C !== "function") return false;
    let pc = null;
    try {
      pc = new C();
      const gathered = new Promise((resolve) => {
        pc.onicecandidate = (event) => { if (event.candidate) resolve(true); };
        pc.onicegatheringstatechange = () => {
          if (pc.iceGatheringState === "complete") resolve(false);
        };
      });
      pc.createDataChannel("probe");
      await pc.setLocalDescription(await pc.createOffer());
      return await gathered;
    } catch (_) {
      return false;
    } finally {
      try { if (pc) pc.close(); } catch (_) { /* closed */ }
    }
  };
  if (typeof target === "function") return gathers(target);
  let constructors;
  try {
    constructors = [target.RTCPeerConnection, target.webkitRTCPeerConnection];
  } catch (_) {
    return false;  // cross-origin: out of the page's reach
  }
  for (const C of constructors) if (await gathers(C)) return true;
  return false;
}
