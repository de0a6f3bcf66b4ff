// A service worker could answer the page's requests with documents of its own making.
self.addEventListener("fetch", () => {});
