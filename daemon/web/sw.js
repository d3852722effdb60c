/* sealwatch's service worker: the page's own assets, cached so the console opens (and shows
 * "connection lost") when the daemon is briefly away. Network first: a running daemon always
 * serves the current page; the cache is only the fallback. Never the API, the live channel,
 * camera frames or anything of another origin: live data is never served from a cache. */
"use strict";
const CACHE = "sealwatch-shell-v1";
const SHELL = ["/", "/static/app.js", "/static/style.css", "/static/i18n.json", "/static/favicon.svg",
  "/static/icon.svg", "/static/icon-192.png", "/static/icon-512.png", "/manifest.webmanifest"];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return; // API, /live, /auth, camera frames: the network only
  ev.respondWith(fetch(ev.request).then((resp) => {
    if (resp.ok) { const copy = resp.clone(); caches.open(CACHE).then((c) => c.put(url.pathname, copy)); }
    return resp;
  }).catch(() => caches.match(url.pathname).then((hit) => hit || Response.error())));
});
