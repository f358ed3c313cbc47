// The security server's pages (registered with the shell in admin/ui/app.js).
"use strict";

Musubi.strings({
  en: {
    "dashboard.title": "Dashboard", "dashboard.server": "Security server", "dashboard.health": "Health check",
    "dashboard.globalconf": "Global configuration", "dashboard.expires": "expires in", "dashboard.ocsp": "OCSP responses",
    "dashboard.timestamping": "Time-stamping", "dashboard.backlog": "records waiting", "dashboard.registered": "registered",
    "dashboard.not_running": "Not set up yet: initialise, make keys and import certificates.", "dashboard.age": "age",
    "dashboard.clients": "Registered clients", "seconds": "s",
  },
  ja: {
    "dashboard.title": "ダッシュボード", "dashboard.server": "セキュリティサーバー", "dashboard.health": "ヘルスチェック",
    "dashboard.globalconf": "グローバル設定", "dashboard.expires": "有効期限まで", "dashboard.ocsp": "OCSP 応答",
    "dashboard.timestamping": "タイムスタンプ", "dashboard.backlog": "件が待機中", "dashboard.registered": "登録済み",
    "dashboard.not_running": "まだ設定されていません。初期化、鍵の生成、証明書のインポートを行ってください。", "dashboard.age": "経過",
    "dashboard.clients": "登録済みクライアント", "seconds": "秒",
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
      main.append(h("p", { class: "notice" }, t("dashboard.not_running")), h("div", { class: "cards" }, cards));
      return;
    }
    cards.push(
      card("dashboard.health", h("p", { id: "health" }, yes(s.health.status === 200), " ", s.health.text)),
      card("dashboard.globalconf", h("p", {}, yes(s.global_configuration.ok)),
        h("p", {}, t("dashboard.expires"), ": ", String(s.global_configuration.expires_in_secs ?? "—"), " ", t("seconds"))),
      card("dashboard.ocsp", h("ul", {}, s.ocsp.map((o) =>
        h("li", {}, o.certificate_sha1.slice(0, 12), "… ", t("dashboard.age"), " ", String(o.age_secs), " ", t("seconds"),
          o.problem ? h("span", { class: "bad" }, " ", o.problem) : "")))),
      card("dashboard.timestamping", h("p", {}, yes(s.timestamping.ok)),
        h("p", {}, String(s.timestamping.backlog), " ", t("dashboard.backlog"))),
      card("dashboard.clients", h("ul", {}, s.registered_clients.length
        ? s.registered_clients.map((c) => h("li", {}, c)) : h("li", {}, t("none")))),
    );
    main.append(h("div", { class: "cards" }, cards));
  },
});
