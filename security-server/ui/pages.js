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
  },
  ja: {
    "dashboard.title": "ダッシュボード", "dashboard.server": "セキュリティサーバー", "dashboard.health": "ヘルスチェック",
    "dashboard.globalconf": "グローバル設定", "dashboard.expires": "有効期限まで", "dashboard.ocsp": "OCSP 応答",
    "dashboard.timestamping": "タイムスタンプ", "dashboard.backlog": "件が待機中", "dashboard.registered": "登録済み",
    "dashboard.not_running": "まだ設定されていません。初期化、鍵の生成、証明書のインポートを行ってください。", "dashboard.age": "経過",
    "dashboard.clients": "登録済みクライアント", "seconds": "秒",
    "dashboard.last_hour": "直近 1 時間", "dashboard.exchanges": "交換", "dashboard.faults": "障害",
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
    "clients.title": "Clients", "clients.id": "Client", "clients.status": "Status", "clients.add": "Add client",
    "clients.client": "Subsystem (SUBSYSTEM:INSTANCE/CLASS/CODE/SUB)", "clients.register": "Register",
    "clients.saved": "saved", "clients.registered": "registered", "clients.requested": "registration requested",
    "services.title": "Services", "services.client": "Client", "services.add": "Add WSDL",
    "services.url": "WSDL URL (http://…), or where the pasted WSDL came from", "services.wsdl": "WSDL text (optional)",
    "services.enabled": "enabled", "services.disabled": "disabled", "services.disable": "Disable",
    "services.enable": "Enable", "services.refresh": "Refresh", "services.notice": "Notice for callers",
    "services.rights": "Access rights", "services.grant": "Grant", "services.revoke": "Revoke",
    "services.subject": "Subsystem, member, local:GROUP or global:GROUP", "services.none": "No service descriptions.",
    "services.no_clients": "Add a client first.",
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
    "services.no_clients": "先にクライアントを追加してください。",
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
    const { api, h, t, form, reload } = ctx;
    const enc = encodeURIComponent;
    const client = await pickClient(main, "services-client", ctx);
    if (!client) return;
    const descriptions = await api("GET", `/api/v1/clients/${enc(client)}/service-descriptions`);
    if (!descriptions.length) main.append(h("p", {}, t("services.none")));
    for (const d of descriptions) {
      const section = h("section", { class: "card", id: `description-${d.id}` },
        h("h2", {}, d.url, " — ", h("span", { class: d.enabled ? "ok" : "bad" }, t(d.enabled ? "services.enabled" : "services.disabled"))));
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
          h("h3", {}, s.id), h("p", {}, s.url),
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
