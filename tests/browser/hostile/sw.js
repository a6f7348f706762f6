// A service worker that would see every request of the origin it controls.
self.addEventListener("fetch", () => {});
