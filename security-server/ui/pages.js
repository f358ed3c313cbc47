// The security server's pages (registered with the shell in admin/ui/app.js).
"use strict";

Musubi.strings({
  en: {
    "dashboard.title": "Dashboard", "dashboard.server": "Security server", "dashboard.health": "Health check",
    "dashboard.globalconf": "Global configuration", "dashboard.expires": "expires in", "dashboard.ocsp": "OCSP responses",
    "dashboard.timestamping": "Time-stamping", "dashboard.backlog": "records waiting", "dashboard.registered": "registered",
    "dashboard.not_running": "Not set up yet: initialise, make keys and import certificates.", "dashboard.age": "age",
    "dashboard.clients": "Registered clients", "seconds": "s",
    "dashboard.last_hour": "Last hour", "dashboard.exchanges": "exchanges", "dashboard.faults": "faults",
    "dashboard.alerts": "Alerts", "dashboard.no_alerts": "No alerts.",
    "alert.globalconf_invalid": "The global configuration is not valid: {problem}. Exchanges are refused.",
    "alert.globalconf_expiring": "The global configuration expires in {seconds} s: can the server reach the central server?",
    "alert.not_registered": "The global configuration does not list this server's authentication certificate: register it under Keys and certificates.",
    "alert.maintenance": "The central server has put this server in maintenance mode: {message}",
    "alert.certificate_expired": "Certificate {certificate} has expired.",
    "alert.certificate_expiring": "Certificate {certificate} expires in {days} days: renew it.",
    "alert.ocsp_problem": "Certificate {certificate}: {problem}",
    "alert.timestamping_failing": "Time-stamping fails: {problem}",
    "alert.timestamping_backlog": "{records} message-log records wait for a time stamp.",
  },
  ja: {
    "dashboard.title": "ダッシュボード", "dashboard.server": "セキュリティサーバー", "dashboard.health": "ヘルスチェック",
    "dashboard.globalconf": "グローバル設定", "dashboard.expires": "有効期限まで", "dashboard.ocsp": "OCSP 応答",
    "dashboard.timestamping": "タイムスタンプ", "dashboard.backlog": "件が待機中", "dashboard.registered": "登録済み",
    "dashboard.not_running": "まだ設定されていません。初期化、鍵の生成、証明書のインポートを行ってください。", "dashboard.age": "経過",
    "dashboard.clients": "登録済みクライアント", "seconds": "秒",
    "dashboard.last_hour": "直近 1 時間", "dashboard.exchanges": "交換", "dashboard.faults": "障害",
    "dashboard.alerts": "警告", "dashboard.no_alerts": "警告はありません。",
    "error.not_running": "サーバーはまだ稼働していません。初期化、鍵、証明書の手順を先に完了してください",
    "error.certificate_in_use": "稼働中のサーバーがこの証明書を使用しています。先に代わりの証明書をインポート (認証用は登録も) してください",
    "alert.globalconf_invalid": "グローバル設定が有効ではありません: {problem}。交換は拒否されます。",
    "alert.globalconf_expiring": "グローバル設定はあと {seconds} 秒で期限切れになります。中央サーバーに接続できているか確認してください。",
    "alert.not_registered": "グローバル設定にこのサーバーの認証証明書が載っていません。「鍵と証明書」で登録申請してください。",
    "alert.maintenance": "中央サーバーがこのサーバーをメンテナンスモードにしています: {message}",
    "alert.certificate_expired": "証明書 {certificate} は期限切れです。",
    "alert.certificate_expiring": "証明書 {certificate} はあと {days} 日で期限切れになります。更新してください。",
    "alert.ocsp_problem": "証明書 {certificate}: {problem}",
    "alert.timestamping_failing": "タイムスタンプの取得に失敗しています: {problem}",
    "alert.timestamping_backlog": "{records} 件のメッセージログがタイムスタンプを待っています。",
  },
});

Musubi.page({
  path: "/",
  title: "dashboard.title",
  nav: true,
  render: async (main, { api, h, t }) => {
    const s = await api("GET", "/api/v1/status");
    const yes = (ok) => h("span", { class: ok ? "ok" : "bad" }, ok ? "✔ " + t("yes") : "✘ " + t("no"));
    const card = (title, ...body) => h("section", { class: "card", "aria-label": t(title) }, h("h2", {}, t(title)), ...body);
    const cards = [
      card("dashboard.server", h("p", { id: "server-id" }, s.server_id || "—"),
        h("p", {}, t("dashboard.registered"), ": ", yes(s.registered))),
    ];
    if (!s.running) {
      main.append(h("p", { class: "notice" }, h("a", { href: "#/keys" }, t("dashboard.not_running"))), h("div", { class: "cards" }, cards));
      return;
    }
    main.append(h("h2", {}, t("dashboard.alerts")), s.alerts.length
      ? h("ul", { id: "alerts", class: "alerts" }, s.alerts.map((a) =>
          h("li", { class: a.level, "data-code": a.code, role: a.level === "error" ? "alert" : null },
            a.level === "error" ? "✘ " : "⚠ ", t(`alert.${a.code}`, a.values))))
      : h("p", { id: "alerts", class: "ok" }, t("dashboard.no_alerts")));
    cards.push(
      card("dashboard.health", h("p", { id: "health" }, yes(s.health.status === 200), " ", s.health.text)),
      card("dashboard.globalconf", h("p", {}, yes(s.global_configuration.ok)),
        h("p", { id: "globalconf-age" }, t("dashboard.age"), ": ", String(s.global_configuration.age_secs ?? "—"), " ", t("seconds")),
        h("p", {}, t("dashboard.expires"), ": ", String(s.global_configuration.expires_in_secs ?? "—"), " ", t("seconds"))),
      card("dashboard.ocsp", h("ul", {}, s.ocsp.map((o) =>
        h("li", {}, o.certificate_sha1.slice(0, 12), "… ", t("dashboard.age"), " ", String(o.age_secs), " ", t("seconds"),
          o.problem ? h("span", { class: "bad" }, " ", o.problem) : "")))),
      card("dashboard.timestamping", h("p", {}, yes(s.timestamping.ok)),
        h("p", {}, String(s.timestamping.backlog), " ", t("dashboard.backlog"))),
      card("dashboard.last_hour", h("p", { id: "last-hour" }, t("dashboard.exchanges"), ": ", String(s.last_hour.exchanges), " · ",
        t("dashboard.faults"), ": ", h("span", { class: s.last_hour.faults ? "bad" : "ok" }, String(s.last_hour.faults))),
        h("ul", {}, Object.entries(s.last_hour.faults_by_code).map(([code, n]) => h("li", {}, `${code}: ${n}`)))),
      card("dashboard.clients", h("ul", {}, s.registered_clients.length
        ? s.registered_clients.map((c) => h("li", {}, c)) : h("li", {}, t("none")))),
    );
    main.append(h("div", { class: "cards" }, cards));
  },
});

Musubi.strings({
  en: {
    "keys.title": "Keys and certificates", "keys.steps": "Setting up this server",
    "keys.step_init": "Initialise: configuration anchor, owner, server code and token PIN",
    "keys.step_auth": "Authentication key and its certificate", "keys.step_sign": "Signing key and its certificate",
    "keys.step_start": "The server starts", "keys.step_register": "Register the authentication certificate with the central server",
    "keys.step_approved": "Approved: the global configuration lists this server",
    "keys.anchor": "Configuration anchor (XML file from the central server)", "keys.owner": "Owner (MEMBER:INSTANCE/CLASS/CODE)",
    "keys.server_code": "Server code", "keys.pin": "Token PIN", "keys.pin2": "Token PIN again", "keys.pin_differs": "The two PINs differ",
    "keys.initialise": "Initialise", "keys.keys": "Keys", "keys.key": "Key", "keys.role": "Role", "keys.label": "Label",
    "keys.role_auth": "authentication", "keys.role_sign": "signing", "keys.generate": "Generate key",
    "keys.member": "Member it signs for (default: the owner)", "keys.csr": "Download CSR",
    "keys.certificates": "Certificates", "keys.subject": "Subject", "keys.hash": "SHA-256", "keys.status": "Status",
    "keys.active": "In use", "keys.activate": "Activate", "keys.disable": "Disable", "keys.register": "Register",
    "keys.unregister": "Unregister", "keys.address": "Address peers reach this server at",
    "keys.import": "Import certificate", "keys.cert_file": "Certificate file (PEM)", "keys.cert_text": "or the PEM text",
    "keys.no_certs": "No certificates yet: download a CSR, have the CA sign it, import the certificate.",
    "keys.starting": "Every step before registration is done: the server is starting…",
    "keys.sent": "Registration request sent:", "keys.imported": "Imported",
    "status.saved": "saved", "status.registration_in_progress": "registration in progress",
    "status.registered": "registered", "status.deletion_in_progress": "deletion in progress",
  },
  ja: {
    "keys.title": "鍵と証明書", "keys.steps": "このサーバーの設定手順",
    "keys.step_init": "初期化: 設定アンカー、所有者、サーバーコード、トークン PIN",
    "keys.step_auth": "認証鍵とその証明書", "keys.step_sign": "署名鍵とその証明書",
    "keys.step_start": "サーバーの起動", "keys.step_register": "認証証明書を中央サーバーに登録申請",
    "keys.step_approved": "承認済み: グローバル設定にこのサーバーが載っています",
    "keys.anchor": "設定アンカー (中央サーバーの XML ファイル)", "keys.owner": "所有者 (MEMBER:インスタンス/クラス/コード)",
    "keys.server_code": "サーバーコード", "keys.pin": "トークン PIN", "keys.pin2": "トークン PIN (確認)", "keys.pin_differs": "2 つの PIN が一致しません",
    "keys.initialise": "初期化", "keys.keys": "鍵", "keys.key": "鍵", "keys.role": "用途", "keys.label": "ラベル",
    "keys.role_auth": "認証", "keys.role_sign": "署名", "keys.generate": "鍵を生成",
    "keys.member": "署名するメンバー (省略時: 所有者)", "keys.csr": "CSR をダウンロード",
    "keys.certificates": "証明書", "keys.subject": "サブジェクト", "keys.hash": "SHA-256", "keys.status": "状態",
    "keys.active": "使用", "keys.activate": "有効にする", "keys.disable": "無効にする", "keys.register": "登録申請",
    "keys.unregister": "登録解除", "keys.address": "他のサーバーから届くこのサーバーのアドレス",
    "keys.import": "証明書をインポート", "keys.cert_file": "証明書ファイル (PEM)", "keys.cert_text": "または PEM の本文",
    "keys.no_certs": "証明書はまだありません。CSR をダウンロードし、認証局に署名してもらい、証明書をインポートしてください。",
    "keys.starting": "登録前の手順はすべて完了しました。サーバーを起動しています…",
    "keys.sent": "登録申請を送りました:", "keys.imported": "インポートしました",
    "status.saved": "保存済み", "status.registration_in_progress": "登録申請中",
    "status.registered": "登録済み", "status.deletion_in_progress": "削除申請中",
  },
});

// Keys and certificates, with the setup steps as a checklist until the
// server is registered: initialise, keys, CSRs, certificates, start, register.
Musubi.page({
  path: "/keys",
  title: "keys.title",
  nav: true,
  order: 1,
  render: async (main, { api, h, t, form, button, download, reload }) => {
    const s = await api("GET", "/api/v1/status");
    const { keys, certificates } = s.initialized ? await api("GET", "/api/v1/keys") : { keys: [], certificates: [] };
    const roleOf = (c) => (keys.find((k) => k.id === c.key_id) || {}).role;
    const has = (role) => certificates.some((c) => roleOf(c) === role);
    const auth = certificates.find((c) => roleOf(c) === "auth");
    const steps = [
      ["keys.step_init", s.initialized], ["keys.step_auth", has("auth")], ["keys.step_sign", has("sign")],
      ["keys.step_start", s.running], ["keys.step_register", s.registered || (auth && auth.status !== "saved")],
      ["keys.step_approved", s.registered],
    ];
    const current = steps.findIndex(([, done]) => !done);
    if (current >= 0) {
      main.append(h("h2", {}, t("keys.steps")), h("ol", { id: "setup-steps", class: "steps" }, steps.map(([key, done], i) =>
        h("li", { class: done ? "done" : i === current ? "current" : "", "aria-current": i === current ? "step" : null },
          done ? "✔ " : "", t(key)))));
    }
    if (!s.initialized) {
      main.append(form("initialise", [
        { name: "anchor", label: "keys.anchor", type: "file", accept: ".xml,application/xml,text/xml" },
        { name: "owner", label: "keys.owner" },
        { name: "server_code", label: "keys.server_code" },
        { name: "pin", label: "keys.pin", type: "password", autocomplete: "new-password" },
        { name: "pin2", label: "keys.pin2", type: "password", autocomplete: "new-password" },
      ], "keys.initialise", async (v) => {
        if (v.pin !== v.pin2) throw { field: "pin2", error: t("keys.pin_differs") };
        await api("POST", "/api/v1/initialization", { anchor: v.anchor, owner: v.owner, server_code: v.server_code, pin: v.pin });
        reload();
      }));
      return;
    }
    if (has("auth") && has("sign") && !s.running) {
      // The server switches from its setup API to serving; ask until it answers.
      const view = h("p", { class: "notice", id: "starting", role: "status" }, t("keys.starting"));
      main.append(view);
      let shown = false;
      const poll = async () => {
        if (view.isConnected) shown = true;
        else if (shown) return; // the person went to another page
        const now = await api("GET", "/api/v1/status").catch(() => null);
        if (now && now.running) return reload();
        setTimeout(poll, 1000);
      };
      setTimeout(poll, 1000);
    }
    const roleName = (role) => t(`keys.role_${role}`);
    main.append(h("h2", {}, t("keys.keys")), h("table", { id: "keys" },
      h("thead", {}, h("tr", {}, ["keys.key", "keys.role", "keys.label"].map((k) => h("th", { scope: "col" }, t(k))), h("th", {}))),
      h("tbody", {}, keys.map((k) => h("tr", { id: `key-${k.id}` },
        h("td", {}, h("code", {}, k.id.slice(0, 16))), h("td", {}, roleName(k.role)), h("td", {}, k.label),
        h("td", {}, form(`csr-${k.id}`, k.role === "sign" ? [{ name: "member", label: "keys.member" }] : [], "keys.csr", async (v) => {
          const r = await api("POST", `/api/v1/keys/${encodeURIComponent(k.id)}/csr`, v.member ? { member: v.member } : {});
          download(`${k.role}-${k.id.slice(0, 8)}.csr.pem`, r.csr, "application/pkcs10");
        })))))),
      form("generate-key", [
        { name: "role", label: "keys.role", options: [["auth", roleName("auth")], ["sign", roleName("sign")]], value: has("auth") || keys.some((k) => k.role === "auth") ? "sign" : "auth" },
        { name: "label", label: "keys.label" },
      ], "keys.generate", async (v) => {
        await api("POST", "/api/v1/keys", v.label ? v : { role: v.role });
        reload();
      }));
    main.append(h("h2", {}, t("keys.certificates")));
    main.append(certificates.length ? h("table", { id: "certificates" },
      h("thead", {}, h("tr", {}, ["keys.subject", "keys.role", "keys.hash", "keys.status", "keys.active"].map((k) => h("th", { scope: "col" }, t(k))), h("th", {}))),
      h("tbody", {}, certificates.map((c) => {
        const actions = [c.active
          ? button("keys.disable", async () => { await api("POST", `/api/v1/certificates/${c.hash}/disable`); reload(); }, { class: "secondary" })
          : button("keys.activate", async () => { await api("POST", `/api/v1/certificates/${c.hash}/activate`); reload(); })];
        if (roleOf(c) === "auth" && s.running && c.status === "saved") {
          actions.unshift(form(`register-${c.hash.slice(0, 16)}`, [{ name: "address", label: "keys.address", value: location.hostname }], "keys.register", async (v) => {
            const r = await api("POST", `/api/v1/certificates/${c.hash}/register`, v);
            sessionStorage.setItem("musubi.sent", String(r.request_id));
            reload();
          }));
        }
        if (roleOf(c) === "auth" && s.running && c.status === "registered") {
          actions.unshift(button("keys.unregister", async () => { await api("POST", `/api/v1/certificates/${c.hash}/unregister`); reload(); }, { class: "secondary" }));
        }
        return h("tr", { id: `cert-${c.hash.slice(0, 16)}` },
          h("td", {}, c.subject), h("td", {}, roleName(roleOf(c))), h("td", {}, h("code", {}, c.hash.slice(0, 16), "…")),
          h("td", { class: "status" }, t(`status.${c.status}`)), h("td", {}, t(c.active ? "yes" : "no")), h("td", {}, actions));
      })))
      : h("p", {}, t("keys.no_certs")));
    const sent = sessionStorage.getItem("musubi.sent");
    if (sent) {
      sessionStorage.removeItem("musubi.sent");
      main.append(h("p", { class: "notice", id: "request-sent", role: "status" }, t("keys.sent"), " ", sent));
    }
    main.append(form("import-certificate", [
      { name: "file", label: "keys.cert_file", type: "file", accept: ".pem,.crt,.cer" },
      { name: "text", label: "keys.cert_text", type: "textarea" },
    ], "keys.import", async (v) => {
      const certificate = v.file || v.text;
      if (!certificate.trim()) throw { field: "file", error: t("error.file_or_text") };
      await api("POST", "/api/v1/certificates", { certificate });
      reload();
    }));
  },
});

Musubi.strings({
  en: {
    "clients.title": "Clients", "clients.id": "Client", "clients.status": "Status", "clients.add": "Add client",
    "clients.client": "Subsystem (SUBSYSTEM:INSTANCE/CLASS/CODE/SUB)", "clients.register": "Register",
    "clients.saved": "saved", "clients.registered": "registered", "clients.requested": "registration requested",
    "services.title": "Services", "services.client": "Client", "services.add": "Add WSDL",
    "services.url": "WSDL URL (http://…), or where the pasted WSDL came from", "services.wsdl": "WSDL text (optional)",
    "services.enabled": "enabled", "services.disabled": "disabled", "services.disable": "Disable",
    "services.enable": "Enable", "services.refresh": "Refresh", "services.notice": "Notice for callers",
    "services.rights": "Access rights", "services.grant": "Grant", "services.revoke": "Revoke",
    "services.subject": "Subsystem, member, local:GROUP or global:GROUP", "services.none": "No service descriptions.",
    "services.no_clients": "Add a client first.", "services.refreshed": "WSDL read",
    "services.provider_url": "Provider URL (where the security server sends requests)", "services.timeout": "Time-out (s)",
  },
  ja: {
    "clients.title": "クライアント", "clients.id": "クライアント", "clients.status": "状態", "clients.add": "クライアントを追加",
    "clients.client": "サブシステム (SUBSYSTEM:インスタンス/クラス/コード/サブシステム)", "clients.register": "登録申請",
    "clients.saved": "保存済み", "clients.registered": "登録済み", "clients.requested": "登録を申請しました",
    "services.title": "サービス", "services.client": "クライアント", "services.add": "WSDL を追加",
    "services.url": "WSDL の URL (http://…)、または貼り付けた WSDL の出所", "services.wsdl": "WSDL の本文 (任意)",
    "services.enabled": "有効", "services.disabled": "無効", "services.disable": "無効にする",
    "services.enable": "有効にする", "services.refresh": "再読み込み", "services.notice": "呼び出し元への通知",
    "services.rights": "アクセス権", "services.grant": "付与", "services.revoke": "取り消し",
    "services.subject": "サブシステム、メンバー、local:グループ、global:グループ", "services.none": "サービス記述はありません。",
    "services.no_clients": "先にクライアントを追加してください。", "services.refreshed": "WSDL の読み込み",
    "services.provider_url": "提供者の URL (セキュリティサーバーが要求を送る先)", "services.timeout": "タイムアウト (秒)",
  },
});

Musubi.page({
  path: "/clients",
  title: "clients.title",
  nav: true,
  render: async (main, { api, h, t, form, reload }) => {
    const clients = await api("GET", "/api/v1/clients");
    const enc = encodeURIComponent;
    main.append(
      h("table", { id: "clients" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("clients.id")), h("th", { scope: "col" }, t("clients.status")), h("th", {}))),
        h("tbody", {}, clients.map((c) => h("tr", {},
          h("td", {}, c.id), h("td", {}, t(`clients.${c.status}`)),
          h("td", {}, c.status === "saved" ? h("button", { type: "button", onclick: async (ev) => {
            await api("POST", `/api/v1/clients/${enc(c.id)}/register`);
            ev.target.replaceWith(h("span", {}, t("clients.requested")));
          } }, t("clients.register")) : ""))))),
      h("h2", {}, t("clients.add")),
      form("add-client", [{ name: "client", label: "clients.client" }], "clients.add", async (v) => {
        await api("POST", "/api/v1/clients", v);
        reload();
      }),
    );
  },
});

// The subsystem a page works on: a picker remembered across pages; none
// (having said so) when the server has no subsystem yet.
async function pickClient(main, id, { api, h, t, reload }) {
  const clients = (await api("GET", "/api/v1/clients")).filter((c) => c.id.startsWith("SUBSYSTEM:"));
  if (!clients.length) {
    main.append(h("p", {}, t("services.no_clients")));
    return null;
  }
  const chosen = sessionStorage.getItem("musubi.client");
  const client = clients.some((c) => c.id === chosen) ? chosen : clients[0].id;
  const choose = (ev) => {
    sessionStorage.setItem("musubi.client", ev.target.value);
    reload();
  };
  main.append(h("label", { for: id }, t("services.client"),
    h("select", { id, onchange: choose }, clients.map((c) => h("option", { value: c.id, selected: c.id === client }, c.id)))));
  return client;
}

Musubi.page({
  path: "/services",
  title: "services.title",
  nav: true,
  render: async (main, ctx) => {
    const { api, h, t, form, button, date, reload } = ctx;
    const enc = encodeURIComponent;
    const client = await pickClient(main, "services-client", ctx);
    if (!client) return;
    const descriptions = await api("GET", `/api/v1/clients/${enc(client)}/service-descriptions`);
    if (!descriptions.length) main.append(h("p", {}, t("services.none")));
    for (const d of descriptions) {
      const section = h("section", { class: "card", id: `description-${d.id}` },
        h("h2", {}, d.url, " — ", h("span", { class: d.enabled ? "ok" : "bad" }, t(d.enabled ? "services.enabled" : "services.disabled"))),
        h("p", {}, t("services.refreshed"), ": ", d.refreshed_at ? date(d.refreshed_at * 1000) : "—", " ",
          button("services.refresh", async () => {
            await api("POST", `/api/v1/service-descriptions/${d.id}/refresh`);
            reload();
          }, { class: "secondary" })));
      if (d.enabled) {
        section.append(form(`disable-${d.id}`, [{ name: "notice", label: "services.notice" }], "services.disable", async (v) => {
          await api("POST", `/api/v1/service-descriptions/${d.id}/disable`, v);
          reload();
        }));
      } else {
        section.append(h("p", {}, d.notice || ""), h("button", { type: "button", onclick: async () => {
          await api("POST", `/api/v1/service-descriptions/${d.id}/enable`);
          reload();
        } }, t("services.enable")));
      }
      for (const s of d.services) {
        const rights = await api("GET", `/api/v1/services/${enc(s.id)}/access-rights`);
        const key = s.id.replace(/[^A-Za-z0-9]/g, "_");
        section.append(h("div", { class: "service", id: `service-${key}` },
          h("h3", {}, s.id),
          form(`edit-${key}`, [
            { name: "url", label: "services.provider_url", value: s.url },
            { name: "timeout_secs", label: "services.timeout", type: "number", value: String(s.timeout_secs) },
          ], "save", async (v) => {
            await api("PATCH", `/api/v1/services/${enc(s.id)}`, { url: v.url, timeout_secs: Number(v.timeout_secs) });
            reload();
          }),
          h("h4", {}, t("services.rights")),
          h("ul", {}, rights.map((r) => h("li", {}, r.subject, " ", h("button", { type: "button", class: "secondary", onclick: async () => {
            await api("DELETE", `/api/v1/services/${enc(s.id)}/access-rights/${enc(r.subject)}`);
            reload();
          } }, t("services.revoke"))))),
          form(`grant-${key}`, [{ name: "subject", label: "services.subject" }], "services.grant", async (v) => {
            await api("POST", `/api/v1/services/${enc(s.id)}/access-rights`, v);
            reload();
          })));
      }
      main.append(section);
    }
    main.append(h("h2", {}, t("services.add")),
      form("add-wsdl", [{ name: "url", label: "services.url" }, { name: "wsdl", label: "services.wsdl", type: "textarea" }], "services.add", async (v) => {
        const body = { url: v.url };
        if (v.wsdl && v.wsdl.trim()) body.wsdl = v.wsdl;
        await api("POST", `/api/v1/clients/${enc(client)}/service-descriptions`, body);
        reload();
      }));
  },
});

Musubi.strings({
  en: {
    "log.title": "Message log", "log.search": "Search", "log.query_id": "Query id", "log.client": "Client",
    "log.service": "Service", "log.from": "Logged from", "log.to": "Logged until", "log.time": "Logged",
    "log.side": "Proxy", "log.kind": "Message", "log.request": "request", "log.response": "response",
    "log.stamped": "Time-stamped", "log.download": "Download containers (ZIP)", "log.none": "No records found.",
    "log.waiting": "waiting for its time stamp",
  },
  ja: {
    "log.title": "メッセージログ", "log.search": "検索", "log.query_id": "クエリ ID", "log.client": "クライアント",
    "log.service": "サービス", "log.from": "記録日時 (から)", "log.to": "記録日時 (まで)", "log.time": "記録日時",
    "log.side": "プロキシ", "log.kind": "メッセージ", "log.request": "要求", "log.response": "応答",
    "log.stamped": "タイムスタンプ", "log.download": "コンテナをダウンロード (ZIP)", "log.none": "該当する記録はありません。",
    "log.waiting": "タイムスタンプ待ち",
  },
});

Musubi.page({
  path: "/log",
  title: "log.title",
  nav: true,
  render: async (main, { api, h, t, form, date }) => {
    const results = h("div", { id: "log-results", "aria-live": "polite" });
    const iso = (v) => (v ? new Date(v).toISOString() : undefined);
    main.append(form("log-search", [
      { name: "query_id", label: "log.query_id" },
      { name: "client", label: "log.client" },
      { name: "service", label: "log.service" },
      { name: "from", label: "log.from", type: "datetime-local" },
      { name: "to", label: "log.to", type: "datetime-local" },
    ], "log.search", async (v) => {
      const q = new URLSearchParams();
      for (const [k, value] of Object.entries({ ...v, from: iso(v.from), to: iso(v.to) })) if (value) q.set(k, value);
      const found = await api("GET", `/api/v1/message-log?${q}`);
      if (!found.length) return results.replaceChildren(h("p", {}, t("log.none")));
      results.replaceChildren(h("table", { id: "log-table" },
        h("thead", {}, h("tr", {}, ["log.time", "log.query_id", "log.client", "log.service", "log.side", "log.kind", "log.stamped"]
          .map((k) => h("th", { scope: "col" }, t(k))))),
        h("tbody", {}, found.map((r) => h("tr", {},
          h("td", {}, date(r.created_at)), h("td", {}, r.query_id), h("td", {}, r.client), h("td", {}, r.service),
          h("td", {}, r.side), h("td", {}, t(r.response ? "log.response" : "log.request")),
          h("td", {}, r.time_stamped
            ? h("a", { href: `/api/v1/message-log/${encodeURIComponent(r.query_id)}?client=${encodeURIComponent(r.client)}`,
                download: `${r.query_id}.zip` }, t("log.download"))
            : t("log.waiting")))))));
    }), results);
  },
});

Musubi.strings({
  en: {
    "access.title": "Access rights", "access.by_client": "Who may call this client's services",
    "access.service": "Service", "access.subject": "Who", "access.groups": "Local groups",
    "access.code": "Group code", "access.description": "Description", "access.add_group": "Add group",
    "access.member": "Member or subsystem", "access.add_member": "Add member", "access.remove": "Remove",
    "access.delete_group": "Delete group", "access.no_rights": "Nobody may call this client's services yet.",
  },
  ja: {
    "access.title": "アクセス権", "access.by_client": "このクライアントのサービスを呼び出せる者",
    "access.service": "サービス", "access.subject": "対象", "access.groups": "ローカルグループ",
    "access.code": "グループコード", "access.description": "説明", "access.add_group": "グループを追加",
    "access.member": "メンバーまたはサブシステム", "access.add_member": "メンバーを追加", "access.remove": "外す",
    "access.delete_group": "グループを削除", "access.no_rights": "このクライアントのサービスを呼び出せる者はまだいません。",
  },
});

Musubi.page({
  path: "/access",
  title: "access.title",
  nav: true,
  render: async (main, ctx) => {
    const { api, h, t, form, reload } = ctx;
    const enc = encodeURIComponent;
    const client = await pickClient(main, "access-client", ctx);
    if (!client) return;
    const [rights, groups, descriptions] = await Promise.all([
      api("GET", `/api/v1/clients/${enc(client)}/access-rights`),
      api("GET", `/api/v1/clients/${enc(client)}/local-groups`),
      api("GET", `/api/v1/clients/${enc(client)}/service-descriptions`),
    ]);
    // Rights name service codes; revoking needs the service's whole id.
    const ids = new Map(descriptions.flatMap((d) => d.services).map((s) => [s.id.split("/")[4], s.id]));
    main.append(h("h2", {}, t("access.by_client")));
    main.append(rights.length
      ? h("table", { id: "rights" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("access.service")), h("th", { scope: "col" }, t("access.subject")), h("th", {}))),
          h("tbody", {}, rights.map((r) => h("tr", {}, h("td", {}, r.service_code), h("td", {}, r.subject),
            h("td", {}, ids.has(r.service_code) ? h("button", { type: "button", class: "secondary", onclick: async () => {
              await api("DELETE", `/api/v1/services/${enc(ids.get(r.service_code))}/access-rights/${enc(r.subject)}`);
              reload();
            } }, t("services.revoke")) : "")))))
      : h("p", {}, t("access.no_rights")));
    main.append(h("h2", {}, t("access.groups")));
    for (const g of groups) {
      const base = `/api/v1/clients/${enc(client)}/local-groups/${enc(g.code)}`;
      main.append(h("section", { class: "card", id: `group-${g.code}` },
        h("h3", {}, `local:${g.code}`, " — ", g.description),
        h("ul", {}, g.members.map((m) => h("li", {}, m, " ", h("button", { type: "button", class: "secondary", onclick: async () => {
          await api("DELETE", `${base}/members/${enc(m)}`);
          reload();
        } }, t("access.remove"))))),
        form(`member-${g.code}`, [{ name: "member", label: "access.member" }], "access.add_member", async (v) => {
          await api("POST", `${base}/members`, v);
          reload();
        }),
        h("button", { type: "button", class: "secondary", onclick: async () => {
          await api("DELETE", base);
          reload();
        } }, t("access.delete_group"))));
    }
    main.append(form("add-group", [{ name: "code", label: "access.code" }, { name: "description", label: "access.description" }],
      "access.add_group", async (v) => {
        await api("POST", `/api/v1/clients/${enc(client)}/local-groups`, v.description ? v : { code: v.code });
        reload();
      }));
  },
});
