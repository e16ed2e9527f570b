/* WeSafe cookie consent: a thin adapter over vanilla-cookieconsent 3 (MIT), served by the WeSafe Privacy API.
 *   <script src="https://privacy.wesafe.se/consent/wesafe-consent.js" data-api="https://privacy.wesafe.se"
 *           data-lang="sv" defer></script>
 * Texts and categories come from GET /v1/cookies; every choice is recorded with POST /v1/visitor-consents; the
 * first-party cookie (the library's) keeps the choices and {v: visitor id, n: notice version, e: expiry,
 * p: 1 while the service has not acknowledged the choice}. The service strips comments and indentation. */
(() => {
"use strict";
const me = document.currentScript, attr = (n) => me && me.getAttribute(n);
const api = (attr("data-api") || new URL(me ? me.src : location.href).origin).replace(/\/+$/, "");
const lang = (attr("data-lang") || document.documentElement.lang || "sv").slice(0, 2).toLowerCase() === "en" ? "en" : "sv";
// Filled in by the service: the vendored library, the stylesheets and the texts (sv, en), at versioned URLs.
const ASSETS = __ASSETS__;
const NAME = "wesafe_consent", GPC_OFF = ["analytics", "marketing"];
const gpc = navigator.globalPrivacyControl === true, gone = gpc ? GPC_OFF : [];
let CC, T, declared = [], version, shown, receipt = null, listeners = [];

const call = (path, init) => fetch(api + path, { ...init, mode: "cors", credentials: "omit" })
  .then((r) => { if (!r.ok) throw r; return r.json(); });
const data = () => (CC.getCookie("data") || {});
const setData = (value) => CC.setCookieData({ value, mode: "overwrite" });
const add = (tag, props) => document.head.appendChild(Object.assign(document.createElement(tag), props));

// The library's cookie in its own format, read and rewritten before the library runs: a stale choice must
// not start a script.
const readCookie = () => {
  const m = document.cookie.match("(^|;)\\s*" + NAME + "=([^;]+)");
  try { return m && JSON.parse(decodeURIComponent(m[2])); } catch (e) { return null; }
};
const writeCookie = (c, erase) => {
  const host = location.hostname;
  document.cookie = NAME + "=" + (erase ? "" : encodeURIComponent(JSON.stringify(c))) +
    "; expires=" + new Date(erase ? 0 : c.expirationTime).toUTCString() + "; Path=/; SameSite=Lax" +
    (host.includes(".") ? "; Domain=" + host : "") + (location.protocol === "https:" ? "; Secure" : "");
};

const choices = () => {
  const out = { necessary: true };
  for (const c of declared) if (!c.required) out[c.code] = !!CC && CC.acceptedCategory(c.code);
  return out;
};
const snapshot = () => {
  const d = CC ? data() : {};
  return { visitor_id: d.v || null, notice_version: d.n || null, choices: choices(), gpc, decided: !!CC && CC.validConsent(), receipt };
};

// Record the choice (the first and every change); the cookie says "pending" until the service has it.
const record = () => {
  const d = data(), c = choices();
  setData({ v: d.v, n: version, e: d.e, p: 1 });
  delete c.necessary;
  const body = { choices: c, notice_version: version, language: lang, text_shown: shown, page_url: location.origin + location.pathname };
  if (d.v) body.visitor_id = d.v;
  const headers = { "Content-Type": "application/json" };
  // Browsers with GPC send Sec-GPC on every request themselves; fetch may drop it as a forbidden name.
  if (gpc) headers["Sec-GPC"] = "1";
  return call("/v1/visitor-consents", { method: "POST", headers, body: JSON.stringify(body), keepalive: true })
    .then((r) => { receipt = r.receipt; setData({ v: r.visitor_id, n: r.notice_version, e: Date.parse(r.expires_at) }); })
    .catch((e) => console.warn("WeSafeConsent: the choice was not recorded", e))
    .then(() => {
      const s = snapshot();
      for (const cb of listeners) try { cb(s); } catch (e) { setTimeout(() => { throw e; }); }
    });
};

const start = ([decl, texts, server]) => {
  CC = window.CookieConsent;
  T = texts;
  // The library renders texts as HTML: the declaration's are plain text.
  decl = JSON.parse(JSON.stringify(decl).split("<").join("&lt;"));
  declared = decl.categories;
  version = decl.notice_version;
  let saved = readCookie();
  if (saved) {
    const d = saved.data || {};
    if ((d.e && d.e < Date.now()) || server === 404) writeCookie(saved, true);
    else {
      let cats = saved.categories || [];
      // The service's state wins (a change made in the CRM, or after login) unless this device's is unsent.
      if (server && server.choices && !d.p) {
        cats = Object.keys(server.choices).filter((k) => server.choices[k]);
        d.e = Date.parse(server.expires_at) || d.e;
      }
      const kept = cats.filter((c) => !gone.includes(c));
      // GPC now refuses what the visitor had allowed: the refusal is recorded once the library runs.
      if (kept.length < cats.length) d.p = 1;
      saved.categories = kept;
      saved.data = d;
      writeCookie(saved);
    }
  }
  const categories = {}, sections = [{ description: T.intro }];
  for (const c of declared) {
    const off = gone.includes(c.code), rows = decl.cookies.filter((k) => k.category === c.code);
    const section = { title: c.name, description: c.description + (off ? "<br><b>" + T.gpc + "</b>" : "") };
    if (!off) {
      section.linkedCategory = c.code;
      categories[c.code] = c.required ? { enabled: true, readOnly: true } : {
        autoClear: { cookies: rows.map((k) => ({ name: k.name.includes("*") ? new RegExp("^" + k.name.split("*").join(".*")) : k.name })) }
      };
    }
    if (rows.length) section.cookieTable = {
      headers: T.table,
      body: rows
    };
    sections.push(section);
  }
  const description = T.description + (gpc ? "<br><br><b>" + T.gpc + "</b>" : "");
  shown = [T.title, description, T.acceptAll, T.rejectAll, T.settings].join("\n").replace(/<[^>]+>/g, " ");
  let h = 7;
  for (const ch of version) h = (h * 31 + ch.charCodeAt(0)) % 2147483647;
  return CC.run({
    // A new notice version is a new revision: the library then asks again, saying why.
    revision: h,
    cookie: { name: NAME, expiresAfterDays: 365 },
    guiOptions: {
      consentModal: { layout: "box wide", position: "bottom center", equalWeightButtons: true },
      preferencesModal: { layout: "box", equalWeightButtons: true }
    },
    categories,
    language: {
      default: lang,
      translations: {
        [lang]: {
          consentModal: {
            title: T.title, description: description + "{{revisionMessage}}", revisionMessage: "<br><br>" + T.revision,
            acceptAllBtn: T.acceptAll, acceptNecessaryBtn: T.rejectAll, showPreferencesBtn: T.settings
          },
          preferencesModal: {
            title: T.settingsTitle, acceptAllBtn: T.acceptAll, acceptNecessaryBtn: T.rejectAll, savePreferencesBtn: T.save,
            closeIconLabel: T.close, sections
          }
        }
      }
    },
    onFirstConsent: record,
    onChange: record
  }).then(() => {
    document.documentElement.dataset.wesafeConsent = "ready";
    // A choice the service has not acknowledged (lost on the way, or turned off by GPC): send it again.
    if (CC.validConsent() && data().p) record();
  });
};

for (const href of ASSETS.css) add("link", { rel: "stylesheet", href: api + href });
const v = (readCookie() || { data: {} }).data || {};
const ready = Promise.all([
  call("/v1/cookies?lang=" + lang),
  call(ASSETS.texts[lang]),
  v.v ? call("/v1/visitor-consents/" + encodeURIComponent(v.v)).catch((r) => r && r.status) : null,
  new Promise((onload, onerror) => add("script", { src: api + ASSETS.js, onload, onerror }))
]).then(start);
ready.catch((e) => {
  document.documentElement.dataset.wesafeConsent = "error";
  console.warn("WeSafeConsent: the consent service could not be reached", e);
});

window.WeSafeConsent = {
  get: () => (CC ? snapshot() : null),
  show: (settings) => ready.then(() => (settings ? CC.showPreferences() : CC.show(true))),
  onChange: (cb) => {
    listeners.push(cb);
    return () => { listeners = listeners.filter((x) => x !== cb); };
  },
  ready
};
})();
