// Passkeys on Muster's pages: the browser's WebAuthn API wrapped around
// Muster's JSON API (same origin, the session cookie; JSON bodies, which
// another site's form cannot send). Binary fields travel as base64url.
(function () {
  "use strict";
  function toBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); }).buffer;
  }
  function fromBuf(b) {
    var bytes = new Uint8Array(b), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  async function post(url, body) {
    var r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body || {})
    });
    var j = await r.json().catch(function () { return {}; });
    if (!r.ok) throw new Error(j.detail || "The passkey could not be used.");
    return j;
  }
  function show(msg) {
    var e = document.getElementById("passkey-error");
    if (e) { e.textContent = msg; e.hidden = false; }
  }
  async function register() {
    var c = await post("/api/v1/me/passkeys/register/start");
    var pk = c.options.publicKey;
    pk.challenge = toBuf(pk.challenge);
    pk.user.id = toBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (x) { x.id = toBuf(x.id); });
    var cred = await navigator.credentials.create({ publicKey: pk });
    await post("/api/v1/me/passkeys/register/finish", {
      ceremony_id: c.ceremony_id,
      name: "Passkey",
      credential: {
        id: cred.id,
        rawId: fromBuf(cred.rawId),
        type: cred.type,
        extensions: {},
        response: {
          attestationObject: fromBuf(cred.response.attestationObject),
          clientDataJSON: fromBuf(cred.response.clientDataJSON)
        }
      }
    });
    window.location.href = "/account?done=passkey_added";
  }
  async function signIn(btn) {
    var email = document.getElementById("email");
    var c = await post("/api/v1/auth/passkey/start", {
      org: btn.dataset.org || null,
      email: email && email.value ? email.value : null
    });
    var pk = c.options.publicKey;
    pk.challenge = toBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (x) { x.id = toBuf(x.id); });
    var a = await navigator.credentials.get({ publicKey: pk });
    await post("/api/v1/auth/passkey/finish", {
      ceremony_id: c.ceremony_id,
      credential: {
        id: a.id,
        rawId: fromBuf(a.rawId),
        type: a.type,
        extensions: {},
        response: {
          authenticatorData: fromBuf(a.response.authenticatorData),
          clientDataJSON: fromBuf(a.response.clientDataJSON),
          signature: fromBuf(a.response.signature),
          userHandle: a.response.userHandle ? fromBuf(a.response.userHandle) : null
        }
      }
    });
    window.location.href = btn.dataset.next || "/account";
  }
  // The second step of a sign-in: options for this page's challenge, then
  // the answer posted to /mfa like a code, as a form.
  async function secondStep(btn) {
    var r = await fetch("/mfa/passkey", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "csrf=" + encodeURIComponent(btn.dataset.csrf)
    });
    var c = await r.json().catch(function () { return {}; });
    if (!r.ok) throw new Error(c.detail || "The passkey could not be used.");
    var pk = c.options.publicKey;
    pk.challenge = toBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (x) { x.id = toBuf(x.id); });
    var a = await navigator.credentials.get({ publicKey: pk });
    var answer = {
      id: a.id,
      rawId: fromBuf(a.rawId),
      type: a.type,
      extensions: {},
      response: {
        authenticatorData: fromBuf(a.response.authenticatorData),
        clientDataJSON: fromBuf(a.response.clientDataJSON),
        signature: fromBuf(a.response.signature),
        userHandle: a.response.userHandle ? fromBuf(a.response.userHandle) : null
      }
    };
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/mfa";
    var fields = { csrf: btn.dataset.csrf, next: btn.dataset.next, method: "passkey", ceremony_id: c.ceremony_id, assertion: JSON.stringify(answer) };
    Object.keys(fields).forEach(function (k) {
      var i = document.createElement("input");
      i.type = "hidden"; i.name = k; i.value = fields[k];
      form.appendChild(i);
    });
    document.body.appendChild(form);
    form.submit();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var second = document.getElementById("mfa-passkey");
    if (second) second.addEventListener("click", function () { secondStep(second).catch(function (e) { show(e.message); }); });
    var add = document.getElementById("add-passkey");
    if (add) add.addEventListener("click", function () { register().catch(function (e) { show(e.message); }); });
    var sign = document.getElementById("passkey-signin");
    if (sign) sign.addEventListener("click", function () { signIn(sign).catch(function (e) { show(e.message); }); });
  });
})();
