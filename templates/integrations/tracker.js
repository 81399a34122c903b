/* CRM storefront tracker. Served by the CRM with this store's public key built in.
 *
 *   crm.track("product_viewed", {product_id: "123", title: "Trail Runner", price: 89});
 *   crm.track("added_to_cart", {product_id: "123", quantity: 1});
 *   crm.track("checkout_started", {checkout_id: "abc", value: 89, currency: "USD", items: [...], url: "..."});
 *   crm.identify({email: "ada@example.com", method: "login"});   // at login or checkout
 *
 * Calls made before this file loads can be queued: window.crmq = window.crmq || []; crmq.push(["track", ...]).
 * A page view is sent on load. Events are batched and sent every 2 seconds and when the page is hidden.
 */
(function () {
  "use strict";
  if (window.crm && window.crm.loaded) return;
  var ENDPOINT = "{{ endpoint|escapejs }}";
  var KEY = "crm_aid";
  var queue = [];
  var timer = null;

  function randomId(length) {
    var alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    var bytes = new Uint8Array(length);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < length; i++) out += alphabet[bytes[i] % alphabet.length];
    return out;
  }

  function anonymousId() {
    var id = null;
    try { id = window.localStorage.getItem(KEY); } catch (e) { /* storage blocked */ }
    if (!id) {
      id = "a_" + randomId(22);
      try { window.localStorage.setItem(KEY, id); } catch (e) { /* keep it for this page only */ }
    }
    return id;
  }

  function flush(useBeacon) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!queue.length) return;
    var batch = queue.splice(0, 100);
    var body = JSON.stringify({ batch: batch });
    // text/plain keeps the request "simple": no CORS preflight, and sendBeacon accepts it.
    if (useBeacon && navigator.sendBeacon && navigator.sendBeacon(ENDPOINT, new Blob([body], { type: "text/plain" }))) {
      if (queue.length) flush(true);
      return;
    }
    fetch(ENDPOINT, { method: "POST", body: body, headers: { "Content-Type": "text/plain" }, keepalive: true, credentials: "omit" })
      .catch(function () { /* dropped: tracking must never break the store */ });
    if (queue.length) schedule();
  }

  function schedule() {
    if (!timer) timer = setTimeout(function () { flush(false); }, 2000);
  }

  function push(event) {
    event.anonymous_id = anonymousId();
    event.message_id = randomId(20);
    event.timestamp = new Date().toISOString();
    queue.push(event);
    if (queue.length >= 20) flush(false); else schedule();
  }

  var crm = {
    loaded: true,
    anonymousId: anonymousId,
    track: function (type, properties) {
      push({ type: type, properties: properties || {} });
    },
    identify: function (who) {
      who = who || {};
      push({ type: "identify", email: who.email || "", customer_id: who.customer_id ? String(who.customer_id) : undefined,
             platform: who.platform, properties: { method: who.method || "" } });
      flush(false);
    },
    flush: function () { flush(false); }
  };

  var early = window.crmq || [];
  window.crm = crm;
  window.crmq = { push: function (call) { crm[call[0]].apply(crm, call.slice(1)); } };
  early.forEach(function (call) { window.crmq.push(call); });

  crm.track("page_viewed", { url: location.href, path: location.pathname, title: document.title, referrer: document.referrer });
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") flush(true); });
  window.addEventListener("pagehide", function () { flush(true); });
})();
