// Runs in a sandboxed frame (an opaque origin): reports what it could load of the app.
window.reporting = true;
addEventListener("load", async () => {
  let data;
  try {
    data = await (await fetch("data.txt")).text();
  } catch (err) {
    data = String(err);
  }
  parent.postMessage({
    frame: true,
    origin: self.origin,
    image: document.getElementById("picture").naturalWidth,
    margin: getComputedStyle(document.body).marginTop,
    data,
  }, "*");
});
