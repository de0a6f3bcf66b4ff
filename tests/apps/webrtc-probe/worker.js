postMessage([typeof self.RTCPeerConnection, typeof self.webkitRTCPeerConnection]);
