// Musubi admin UI: the shell both servers share. It talks only to the admin
// REST API of the server that serves it (same origin, session cookie, CSRF
// token on every change), so the UI can do nothing the API's roles forbid.
// Pages are registered by the server's own pages.js with Musubi.page().
"use strict";

const Musubi = (() => {
  const strings = {
    en: {
      language: "Language", logout: "Log out", loading: "Loading…",
      login: "Log in", username: "User name", password: "Password", "login.title": "Log in to Musubi",
      "setup.title": "First-run setup", setup_token: "Setup token",
      "setup.intro": "No user exists yet. Enter the setup token from the file the server's log names (ui-setup-token in its admin folder, readable by the server's user only), and make the first user (it has every role).",
      "setup.create": "Create the first user",
      "error.general": "The request failed", "error.network": "The server cannot be reached",
      "error.retrying": "Trying again…", "error.file_too_big": "The file is too big", "error.file_or_text": "Choose a file or paste the text",
      yes: "yes", no: "no", save: "Save", none: "none",
    },
    ja: {
      language: "言語", logout: "ログアウト", loading: "読み込み中…",
      login: "ログイン", username: "ユーザー名", password: "パスワード", "login.title": "Musubi にログイン",
      "setup.title": "初期設定", setup_token: "セットアップトークン",
      "setup.intro": "ユーザーがまだいません。サーバーのログに示されたファイル (管理フォルダーの ui-setup-token、サーバーのユーザーのみ読み取り可) にあるセットアップトークンを入力し、最初のユーザー（すべてのロールを持つ）を作成してください。",
      "setup.create": "最初のユーザーを作成",
      "error.general": "要求が失敗しました", "error.network": "サーバーに接続できません",
      "error.retrying": "再接続しています…", "error.file_too_big": "ファイルが大きすぎます",
      "error.status.400": "入力が正しくありません", "error.status.401": "ログインしてください",
      "error.status.403": "この操作は許可されていません", "error.status.404": "見つかりません",
      "error.status.409": "現在の状態ではできません", "error.status.413": "要求が大きすぎます",
      "error.status.422": "受け付けられませんでした", "error.status.429": "要求が多すぎます",
      "error.status.500": "サーバー内部のエラーです", "error.status.502": "相手のサーバーから正しい応答がありません",
      "error.status.503": "一時的に利用できません",
      "error.login_failed": "ユーザー名またはパスワードが違います",
      "error.login_wait": "ログインの失敗が続いたため、{seconds} 秒待ってから再度お試しください",
      "error.login_locked": "ログインの失敗が多すぎるため、このユーザー名は {minutes} 分間ロックされています",
      "error.busy": "ログインが集中しています。少し待ってから再度お試しください",
      "error.setup_token_wrong": "セットアップトークンが違うか、有効期限が切れています (サーバーを再起動すると新しいトークンがファイルに書かれます)",
      "error.first_user_exists": "最初のユーザーは作成済みです。ログインしてください",
      "error.username_rules": "ユーザー名は英数字と . _ - @ の 1～64 文字です",
      "error.password_length": "パスワードは {min}～{max} 文字です",
      "error.user_exists": "そのユーザー名は既に使われています",
      "error.last_admin": "{user} は最後のシステム管理者です。先に別のユーザーにそのロールを与えてください",
      "error.csrf_missing": "セッションの確認に失敗しました。ページを再読み込みしてください",
      "error.too_many_requests": "要求が多すぎます。{seconds} 秒後に再度お試しください",
      "error.role_needed": "この操作には次のロールが必要です: {roles}",
      "error.internal": "サーバー内部のエラーです。サーバーのログを確認してください", "error.file_or_text": "ファイルを選ぶか、本文を貼り付けてください",
      yes: "はい", no: "いいえ", save: "保存", none: "なし",
    },
  };
  const pages = [];
  let lang = localStorage.getItem("musubi.lang") || ((navigator.language || "en").toLowerCase().startsWith("ja") ? "ja" : "en");
  let csrf = null;
  let me = null;

  // Keys the current language lacks are noted (the page's data-missing; the
  // browser tests check every page has none in either language).
  const missing = new Set();
  const fill = (text, values) =>
    values ? text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all)) : text;
  // t("key", {name: value}) fills "{name}" in the text.
  const t = (key, values) => {
    let text = strings[lang] && strings[lang][key];
    if (text === undefined) {
      missing.add(key);
      text = strings.en[key] || key;
    }
    return fill(text, values);
  };
  // An API error in the user's language: its code's own text, else the
  // server's English words (after a translated gist in other languages).
  function errorText(status, body) {
    const own = strings[lang] && strings[lang][`error.${body.code}`];
    if (own) return fill(own, body.values || {});
    if (lang === "en" && body.error) return body.error;
    const gist = (strings[lang] && strings[lang][`error.status.${status}`]) || t("error.general");
    return body.error ? `${gist}: ${body.error}` : gist;
  }
  // Largest file a form reads (anchors, certificates, WSDLs are far smaller).
  const MAX_FILE = 1024 * 1024;

  // Builds an element: h("p", {class: "x"}, "text", child…). Text is never parsed as HTML.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  const date = (value) => {
    const d = new Date(value);
    return isNaN(d) ? String(value) : new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" }).format(d);
  };

  async function api(method, path, body) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (method !== "GET" && csrf) headers["x-csrf-token"] = csrf;
    let r;
    try {
      r = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw { status: 0, error: t("error.network") };
    }
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!r.ok) {
      const body = json || {};
      throw Object.assign({ status: r.status }, body, { detail: body.error, error: errorText(r.status, body) });
    }
    return json;
  }

  // A form: fields [{name, type, label, value, options}], submit(values) → Promise.
  // An API error naming a field is shown next to it; others above the button.
  function form(id, fields, submitLabel, submit) {
    const general = h("p", { class: "error", role: "alert", id: `${id}-error` });
    const f = h("form", { id, novalidate: true });
    for (const field of fields) {
      const input = field.options
        ? h("select", { name: field.name, id: `${id}-${field.name}` }, field.options.map(([v, l]) => h("option", { value: v, selected: v === field.value }, l)))
        : field.type === "textarea"
        ? h("textarea", { name: field.name, id: `${id}-${field.name}`, rows: 8 })
        : field.type === "file"
        ? h("input", { name: field.name, id: `${id}-${field.name}`, type: "file", accept: field.accept || null })
        : h("input", { name: field.name, id: `${id}-${field.name}`, type: field.type || "text", value: field.value || "", autocomplete: field.autocomplete || "off" });
      f.append(h("label", { for: `${id}-${field.name}` }, t(field.label || field.name), input,
        h("span", { class: "error", id: `${id}-${field.name}-error`, "aria-live": "polite" })));
    }
    const button = h("button", { type: "submit" }, t(submitLabel));
    f.append(general, button);
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      f.querySelectorAll(".error").forEach((e) => (e.textContent = ""));
      const values = Object.fromEntries(new FormData(f).entries());
      button.disabled = true;
      try {
        // A chosen file is read as text; none gives "".
        for (const [k, v] of Object.entries(values)) {
          if (!(v instanceof File)) continue;
          if (v.size > MAX_FILE) throw { field: k, error: t("error.file_too_big") };
          values[k] = v.size ? await v.text() : "";
        }
        await submit(values);
      } catch (e) {
        const at = e.field && f.querySelector(`#${id}-${CSS.escape(e.field)}-error`);
        (at || general).textContent = e.error || t("error.general");
        const input = e.field && f.querySelector(`[name="${CSS.escape(e.field)}"]`);
        if (input) input.focus();
      } finally {
        button.disabled = false;
      }
    });
    return f;
  }

  // A button doing `act()`; its failure is said beside it.
  function button(label, act, attrs) {
    const said = h("span", { class: "error", role: "alert" });
    const b = h("button", { type: "button", ...(attrs || {}), onclick: async () => {
      said.textContent = "";
      b.disabled = true;
      try {
        await act();
      } catch (e) {
        said.textContent = e.error || t("error.general");
      } finally {
        b.disabled = false;
      }
    } }, t(label));
    return h("span", { class: "action" }, b, said);
  }

  // Offers `text` as a file download named `name`.
  function download(name, text, type) {
    const href = URL.createObjectURL(new Blob([text], { type: type || "application/octet-stream" }));
    const a = h("a", { href, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
  }

  function translate(root) {
    root.querySelectorAll("[data-t]").forEach((el) => (el.textContent = t(el.dataset.t)));
  }

  function nav() {
    const el = document.getElementById("nav");
    el.replaceChildren();
    if (!me) return;
    for (const p of pages.filter((p) => p.nav).sort((a, b) => (a.order || 0) - (b.order || 0))) {
      const current = location.hash.replace(/^#/, "") === p.path || (p.path === "/" && !location.hash);
      el.append(h("a", { href: `#${p.path}`, "aria-current": current ? "page" : null }, t(p.title)));
    }
    document.getElementById("who").textContent = `${me.user} (${me.roles.join(", ")})`;
    document.getElementById("logout").hidden = false;
  }

  // Each call renders the current page afresh; a later call wins over an
  // earlier one still waiting for the API.
  let generation = 0;
  async function show() {
    const mine = ++generation;
    missing.clear();
    // "LANG PATH" once the page is shown (what tests wait for).
    delete document.documentElement.dataset.ready;
    const main = document.getElementById("main");
    document.documentElement.lang = lang;
    translate(document);
    try {
      const state = await api("GET", "/api/v1/setup-state");
      if (mine !== generation) return;
      if (!state.users_exist) return setupPage(main);
      me = await api("GET", "/api/v1/session").catch((e) => { if (e.status === 401) return null; throw e; });
      if (mine !== generation) return;
      if (!me) return loginPage(main);
      csrf = me.csrf_token;
      const path = location.hash.replace(/^#/, "") || "/";
      const page = pages.find((p) => p.path === path) || pages.find((p) => p.path === "/");
      const view = h("div", {}, h("h1", {}, t(page.title)));
      await page.render(view, { api, h, t, form, button, download, date, me, reload: show });
      if (mine !== generation) return;
      nav();
      document.title = `${t(page.title)} · Musubi`;
      document.documentElement.dataset.missing = [...missing].join(" ");
      main.replaceChildren(view);
      document.documentElement.dataset.ready = `${lang} ${page.path}`;
    } catch (e) {
      if (mine !== generation) return;
      main.replaceChildren(h("p", { class: "notice", role: "alert" }, e.error || t("error.general"),
        e.status === 0 ? ` ${t("error.retrying")}` : ""));
      // Unreachable (a restart, say): asked again until it answers, unless
      // the person has gone elsewhere meanwhile.
      if (e.status === 0) setTimeout(() => { if (mine === generation) show(); }, 2000);
    }
    main.focus({ preventScroll: true });
  }

  function setupPage(main) {
    document.title = `${t("setup.title")} · Musubi`;
    main.replaceChildren(
      h("h1", {}, t("setup.title")),
      h("p", {}, t("setup.intro")),
      form("setup", [
        { name: "setup_token", label: "setup_token" },
        { name: "username", label: "username", autocomplete: "username" },
        { name: "password", label: "password", type: "password", autocomplete: "new-password" },
      ], "setup.create", async (v) => {
        const r = await api("POST", "/api/v1/first-user", v);
        csrf = r.csrf_token;
        if (location.hash && location.hash !== "#/") location.hash = "#/"; // hashchange shows the page
        else await show();
      }),
    );
  }

  function loginPage(main) {
    document.title = `${t("login.title")} · Musubi`;
    document.getElementById("nav").replaceChildren();
    document.getElementById("who").textContent = "";
    document.getElementById("logout").hidden = true;
    main.replaceChildren(
      h("h1", {}, t("login.title")),
      form("login", [
        { name: "username", label: "username", autocomplete: "username" },
        { name: "password", label: "password", type: "password", autocomplete: "current-password" },
      ], "login", async (v) => {
        const r = await api("POST", "/api/v1/login", v);
        csrf = r.csrf_token;
        await show();
      }),
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    const select = document.getElementById("lang");
    select.value = lang;
    select.addEventListener("change", () => {
      lang = select.value;
      localStorage.setItem("musubi.lang", lang);
      show();
    });
    document.getElementById("logout").addEventListener("click", async () => {
      await api("POST", "/api/v1/logout").catch(() => null);
      me = null;
      csrf = null;
      location.hash = "";
      show();
    });
    window.addEventListener("hashchange", show);
    show();
  });

  return {
    // Registers a page: {path, title (string key), nav, render(main, ctx)}.
    page: (p) => pages.push(p),
    // Adds strings: {en: {...}, ja: {...}}.
    strings: (more) => { for (const l of Object.keys(more)) Object.assign(strings[l] = strings[l] || {}, more[l]); },
  };
})();

// Users and API keys: the same on both servers (system administrators).
Musubi.strings({
  en: {
    "users.title": "Users and API keys", "users.users": "Users", "users.keys": "API keys", "users.roles": "Roles",
    "users.add": "Add user", "users.delete": "Delete", "users.key_add": "Make API key", "users.name": "Name",
    "users.key_shown": "The new key (shown once; keep it safe):", "users.revoke": "Revoke",
    roles: "Roles (comma-separated)",
  },
  ja: {
    "users.title": "ユーザーと API キー", "users.users": "ユーザー", "users.keys": "API キー", "users.roles": "ロール",
    "users.add": "ユーザーを追加", "users.delete": "削除", "users.key_add": "API キーを作成", "users.name": "名前",
    "users.key_shown": "新しいキー (一度だけ表示されます。安全に保管してください):", "users.revoke": "失効",
    roles: "ロール (カンマ区切り)",
  },
});

Musubi.page({
  path: "/users",
  title: "users.title",
  nav: true,
  order: 100,
  render: async (main, { api, h, t, form, reload }) => {
    const [users, keys] = await Promise.all([api("GET", "/api/v1/users"), api("GET", "/api/v1/api-keys")]);
    const roles = (v) => v.roles.split(",").map((r) => r.trim()).filter(Boolean);
    const shown = h("p", { id: "new-key", class: "notice", hidden: true });
    main.append(
      h("h2", {}, t("users.users")),
      h("table", { id: "users" }, h("tbody", {}, users.map((u) => h("tr", {},
        h("td", {}, u.username), h("td", {}, u.roles.join(", ")),
        h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
          await api("DELETE", `/api/v1/users/${encodeURIComponent(u.username)}`);
          reload();
        } }, t("users.delete"))))))),
      form("add-user", [
        { name: "username", label: "username" },
        { name: "password", label: "password", type: "password", autocomplete: "new-password" },
        { name: "roles", label: "roles", value: "observer" },
      ], "users.add", async (v) => {
        await api("POST", "/api/v1/users", { username: v.username, password: v.password, roles: roles(v) });
        reload();
      }),
      h("h2", {}, t("users.keys")),
      h("table", { id: "api-keys" }, h("tbody", {}, keys.map((k) => h("tr", {},
        h("td", {}, String(k.id)), h("td", {}, k.name), h("td", {}, k.roles.join(", ")),
        h("td", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
          await api("DELETE", `/api/v1/api-keys/${k.id}`);
          reload();
        } }, t("users.revoke"))))))),
      form("add-key", [{ name: "name", label: "users.name" }, { name: "roles", label: "roles", value: "observer" }],
        "users.key_add", async (v) => {
          const made = await api("POST", "/api/v1/api-keys", { name: v.name, roles: roles(v) });
          shown.replaceChildren(t("users.key_shown"), " ", h("code", {}, made.key));
          shown.hidden = false;
        }),
      shown,
    );
  },
});
