// The central server's pages (registered with the shell in admin/ui/app.js).
"use strict";

Musubi.strings({
  en: {
    "requests.title": "Registration requests", "requests.id": "No.", "requests.kind": "Request",
    "requests.server": "Security server", "requests.detail": "Subject", "requests.status": "Status",
    "requests.received": "Received", "requests.decided_by": "Decided by", "requests.approve": "Approve",
    "requests.reject": "Reject", "requests.reason": "Reason for rejecting", "requests.empty": "No requests.",
    "status.pending": "pending", "status.approved": "approved", "status.rejected": "rejected",
    "kind.authCertReg": "authentication certificate", "kind.clientReg": "client registration",
    "kind.clientDeletion": "client deletion", "kind.authCertDeletion": "certificate deletion",
    "kind.addressChange": "address change",
  },
  ja: {
    "requests.title": "登録申請", "requests.id": "番号", "requests.kind": "申請",
    "requests.server": "セキュリティサーバー", "requests.detail": "対象", "requests.status": "状態",
    "requests.received": "受付日時", "requests.decided_by": "決定者", "requests.approve": "承認",
    "requests.reject": "却下", "requests.reason": "却下の理由", "requests.empty": "申請はありません。",
    "status.pending": "保留中", "status.approved": "承認済み", "status.rejected": "却下",
    "kind.authCertReg": "認証証明書の登録", "kind.clientReg": "クライアントの登録",
    "kind.clientDeletion": "クライアントの削除", "kind.authCertDeletion": "証明書の削除",
    "kind.addressChange": "アドレス変更",
  },
});

Musubi.page({
  path: "/",
  title: "requests.title",
  nav: true,
  render: async (main, { api, h, t, date, form, reload }) => {
    const list = await api("GET", "/api/v1/requests");
    if (!list.length) {
      main.append(h("p", {}, t("requests.empty")));
      return;
    }
    const row = (r) => {
      const actions = h("td", {});
      if (r.status === "pending") {
        actions.append(
          h("button", { type: "button", id: `approve-${r.id}`, onclick: async () => {
            await api("POST", `/api/v1/requests/${r.id}/approve`);
            reload();
          } }, t("requests.approve")),
          form(`reject-${r.id}`, [{ name: "reason", label: "requests.reason" }], "requests.reject", async (v) => {
            await api("POST", `/api/v1/requests/${r.id}/reject`, v);
            reload();
          }),
        );
      }
      return h("tr", { id: `request-${r.id}` },
        h("td", {}, String(r.id)), h("td", {}, t(`kind.${r.kind}`)), h("td", {}, r.server), h("td", {}, r.detail || ""),
        h("td", { class: `status-${r.status}` }, t(`status.${r.status}`)), h("td", {}, date(r.received_at * 1000)),
        h("td", {}, r.decided_by || ""), actions);
    };
    main.append(h("table", {},
      h("thead", {}, h("tr", {}, ["requests.id", "requests.kind", "requests.server", "requests.detail", "requests.status",
        "requests.received", "requests.decided_by", ""].map((k) => h("th", { scope: "col" }, k ? t(k) : "")))),
      h("tbody", {}, list.map(row))));
  },
});

Musubi.strings({
  en: {
    "members.title": "Members", "members.id": "Member", "members.name": "Name", "members.subsystems": "Subsystems",
    "members.add": "Add member", "members.member_id": "Member (MEMBER:INSTANCE/CLASS/CODE)",
    "members.subsystem": "Subsystem code", "members.add_subsystem": "Add subsystem",
    "members.classes": "Member classes", "members.class_code": "Class code", "members.class_description": "Description",
    "members.add_class": "Add member class", "members.empty": "No members yet.",
    "servers.title": "Security servers", "servers.id": "Security server", "servers.address": "Address",
    "servers.certs": "Authentication certificates", "servers.clients": "Clients", "servers.maintenance": "Maintenance",
    "servers.message": "Message to the server's administrators", "servers.start_maintenance": "Start maintenance",
    "servers.end_maintenance": "End maintenance", "servers.empty": "No security servers registered yet.",
    "groups.title": "Global groups", "groups.automatic": "kept by the central server", "groups.code": "Group code",
    "groups.member": "Member or subsystem", "groups.description": "Description (for a new group)",
    "groups.add_member": "Add to group", "groups.remove": "Remove",
    "trust.title": "Trust services", "trust.cas": "Certification authorities", "trust.tsas": "Time-stamping authorities",
    "trust.name": "Name", "trust.subject": "Subject", "trust.valid_until": "Valid until", "trust.ocsp": "OCSP responders",
    "trust.url": "URL", "trust.certificate": "Certificate (PEM file)", "trust.ocsp_url": "OCSP responder URL (optional)",
    "trust.tsa_url": "Time-stamping URL", "trust.add_ca": "Add CA", "trust.add_tsa": "Add TSA",
    "trust.auth_only": "authentication only",
    "globalconf.title": "Global configuration", "globalconf.instance": "Instance",
    "globalconf.generated_at": "Generated", "globalconf.interval": "Generated every",
    "globalconf.expire": "Valid for", "globalconf.directory": "Directory URL", "globalconf.keys": "Signing keys",
    "globalconf.active": "active", "globalconf.inactive": "standby", "globalconf.generate": "Generate now",
    "globalconf.anchor": "Download the configuration anchor", "globalconf.anchor_note": "New security servers are initialised with this file.",
    seconds: "s",
  },
  ja: {
    "members.title": "メンバー", "members.id": "メンバー", "members.name": "名称", "members.subsystems": "サブシステム",
    "members.add": "メンバーを追加", "members.member_id": "メンバー (MEMBER:インスタンス/クラス/コード)",
    "members.subsystem": "サブシステムコード", "members.add_subsystem": "サブシステムを追加",
    "members.classes": "メンバークラス", "members.class_code": "クラスコード", "members.class_description": "説明",
    "members.add_class": "メンバークラスを追加", "members.empty": "メンバーはまだいません。",
    "servers.title": "セキュリティサーバー", "servers.id": "セキュリティサーバー", "servers.address": "アドレス",
    "servers.certs": "認証証明書", "servers.clients": "クライアント", "servers.maintenance": "メンテナンス",
    "servers.message": "サーバー管理者へのメッセージ", "servers.start_maintenance": "メンテナンスを開始",
    "servers.end_maintenance": "メンテナンスを終了", "servers.empty": "登録されたセキュリティサーバーはまだありません。",
    "groups.title": "グローバルグループ", "groups.automatic": "中央サーバーが管理", "groups.code": "グループコード",
    "groups.member": "メンバーまたはサブシステム", "groups.description": "説明 (新しいグループの場合)",
    "groups.add_member": "グループに追加", "groups.remove": "外す",
    "trust.title": "トラストサービス", "trust.cas": "認証局", "trust.tsas": "タイムスタンプ局",
    "trust.name": "名称", "trust.subject": "サブジェクト", "trust.valid_until": "有効期限", "trust.ocsp": "OCSP レスポンダー",
    "trust.url": "URL", "trust.certificate": "証明書 (PEM ファイル)", "trust.ocsp_url": "OCSP レスポンダーの URL (任意)",
    "trust.tsa_url": "タイムスタンプの URL", "trust.add_ca": "認証局を追加", "trust.add_tsa": "タイムスタンプ局を追加",
    "trust.auth_only": "認証専用",
    "globalconf.title": "グローバル設定", "globalconf.instance": "インスタンス",
    "globalconf.generated_at": "生成日時", "globalconf.interval": "生成間隔",
    "globalconf.expire": "有効期間", "globalconf.directory": "ディレクトリ URL", "globalconf.keys": "署名鍵",
    "globalconf.active": "使用中", "globalconf.inactive": "待機", "globalconf.generate": "今すぐ生成",
    "globalconf.anchor": "設定アンカーをダウンロード", "globalconf.anchor_note": "新しいセキュリティサーバーはこのファイルで初期化します。",
    seconds: "秒",
  },
});

// A table with a header row of string keys and rows of cells.
function table(h, t, id, heads, rows) {
  return h("table", { id },
    h("thead", {}, h("tr", {}, heads.map((k) => h("th", { scope: "col" }, k ? t(k) : "")))),
    h("tbody", {}, rows));
}

Musubi.page({
  path: "/members",
  title: "members.title",
  nav: true,
  order: 1,
  render: async (main, { api, h, t, form, reload }) => {
    const enc = encodeURIComponent;
    const [members, classes] = await Promise.all([api("GET", "/api/v1/members"), api("GET", "/api/v1/member-classes")]);
    main.append(members.length
      ? table(h, t, "members", ["members.id", "members.name", "members.subsystems", ""], members.map((m) => h("tr", { id: `member-${m.id.replace(/[^A-Za-z0-9]/g, "_")}` },
          h("td", {}, m.id), h("td", {}, m.name), h("td", {}, h("ul", {}, m.subsystems.map((s) => h("li", {}, s)))),
          h("td", {}, form(`subsystem-${m.id.replace(/[^A-Za-z0-9]/g, "_")}`, [{ name: "code", label: "members.subsystem" }], "members.add_subsystem", async (v) => {
            await api("POST", `/api/v1/members/${enc(m.id)}/subsystems`, v);
            reload();
          })))))
      : h("p", {}, t("members.empty")),
      h("h2", {}, t("members.add")),
      form("add-member", [{ name: "id", label: "members.member_id" }, { name: "name", label: "members.name" }], "members.add", async (v) => {
        await api("POST", "/api/v1/members", v);
        reload();
      }),
      h("h2", {}, t("members.classes")),
      table(h, t, "member-classes", ["members.class_code", "members.class_description"],
        classes.map((c) => h("tr", {}, h("td", {}, c.code), h("td", {}, c.description)))),
      form("add-class", [{ name: "code", label: "members.class_code" }, { name: "description", label: "members.class_description" }], "members.add_class", async (v) => {
        await api("POST", "/api/v1/member-classes", v);
        reload();
      }));
  },
});

Musubi.page({
  path: "/servers",
  title: "servers.title",
  nav: true,
  order: 2,
  render: async (main, { api, h, t, form, button, reload }) => {
    const enc = encodeURIComponent;
    const servers = await api("GET", "/api/v1/servers");
    if (!servers.length) return main.append(h("p", {}, t("servers.empty")));
    main.append(table(h, t, "servers", ["servers.id", "servers.address", "servers.certs", "servers.clients", "servers.maintenance"],
      servers.map((s) => h("tr", { id: `server-${s.id.replace(/[^A-Za-z0-9]/g, "_")}` },
        h("td", {}, s.id), h("td", {}, s.address || "—"),
        h("td", {}, h("ul", {}, s.auth_cert_hashes.map((c) => h("li", {}, h("code", {}, c.slice(0, 16), "…"))))),
        h("td", {}, h("ul", {}, s.clients.map((c) => h("li", {}, c)))),
        h("td", {}, s.maintenance !== null && s.maintenance !== undefined
          ? [h("p", { class: "bad" }, s.maintenance || "✔"), button("servers.end_maintenance", async () => {
              await api("DELETE", `/api/v1/servers/${enc(s.id)}/maintenance`);
              reload();
            }, { class: "secondary" })]
          : form(`maintenance-${s.id.replace(/[^A-Za-z0-9]/g, "_")}`, [{ name: "message", label: "servers.message" }], "servers.start_maintenance", async (v) => {
              await api("PUT", `/api/v1/servers/${enc(s.id)}/maintenance`, v);
              reload();
            }))))));
  },
});

Musubi.page({
  path: "/groups",
  title: "groups.title",
  nav: true,
  order: 3,
  render: async (main, { api, h, t, form, button, reload }) => {
    const enc = encodeURIComponent;
    const groups = await api("GET", "/api/v1/global-groups");
    for (const g of groups) {
      main.append(h("section", { class: "card", id: `group-${g.code}` },
        h("h2", {}, `global:${g.code}`, " — ", g.description, g.automatic ? ` (${t("groups.automatic")})` : ""),
        h("ul", {}, g.members.map((m) => h("li", {}, m, " ", g.automatic ? "" : button("groups.remove", async () => {
          await api("DELETE", `/api/v1/global-groups/${enc(g.code)}/members/${enc(m)}`);
          reload();
        }, { class: "secondary" }))))));
    }
    main.append(h("h2", {}, t("groups.add_member")),
      form("add-group-member", [
        { name: "code", label: "groups.code" }, { name: "member", label: "groups.member" },
        { name: "description", label: "groups.description" },
      ], "groups.add_member", async (v) => {
        const body = { member: v.member };
        if (v.description) body.description = v.description;
        await api("POST", `/api/v1/global-groups/${enc(v.code)}/members`, body);
        reload();
      }));
  },
});

Musubi.page({
  path: "/trust",
  title: "trust.title",
  nav: true,
  order: 4,
  render: async (main, { api, h, t, form, date, reload }) => {
    const [cas, tsas] = await Promise.all([api("GET", "/api/v1/certification-authorities"), api("GET", "/api/v1/timestamping-authorities")]);
    const until = (c) => (c.not_after ? date(c.not_after) : "—");
    main.append(h("h2", {}, t("trust.cas")),
      table(h, t, "cas", ["trust.name", "trust.subject", "trust.valid_until", "trust.ocsp"], cas.map((c) => h("tr", {},
        h("td", {}, c.name, c.authentication_only ? ` (${t("trust.auth_only")})` : ""), h("td", {}, c.subject || ""),
        h("td", {}, until(c)), h("td", {}, h("ul", {}, c.ocsp.map((u) => h("li", {}, u))))))),
      form("add-ca", [
        { name: "name", label: "trust.name" },
        { name: "certificate", label: "trust.certificate", type: "file", accept: ".pem,.crt,.cer" },
        { name: "ocsp_url", label: "trust.ocsp_url" },
      ], "trust.add_ca", async (v) => {
        await api("POST", "/api/v1/certification-authorities", v.ocsp_url ? v : { name: v.name, certificate: v.certificate });
        reload();
      }),
      h("h2", {}, t("trust.tsas")),
      table(h, t, "tsas", ["trust.name", "trust.url", "trust.subject", "trust.valid_until"], tsas.map((s) => h("tr", {},
        h("td", {}, s.name), h("td", {}, s.url), h("td", {}, s.subject || ""), h("td", {}, until(s))))),
      form("add-tsa", [
        { name: "name", label: "trust.name" },
        { name: "url", label: "trust.tsa_url" },
        { name: "certificate", label: "trust.certificate", type: "file", accept: ".pem,.crt,.cer" },
      ], "trust.add_tsa", async (v) => {
        await api("POST", "/api/v1/timestamping-authorities", v);
        reload();
      }));
  },
});

Musubi.page({
  path: "/globalconf",
  title: "globalconf.title",
  nav: true,
  order: 5,
  render: async (main, { api, h, t, date, button, reload }) => {
    const g = await api("GET", "/api/v1/global-configuration");
    const row = (key, ...value) => h("tr", {}, h("th", { scope: "row" }, t(key)), h("td", {}, ...value));
    main.append(
      h("table", { id: "globalconf" }, h("tbody", {},
        row("globalconf.instance", g.instance),
        row("globalconf.generated_at", h("span", { id: "generated-at" }, g.generated_at ? date(g.generated_at) : "—")),
        row("globalconf.interval", String(g.generation_interval_secs), " ", t("seconds")),
        row("globalconf.expire", String(g.expire_after_secs), " ", t("seconds")),
        row("globalconf.directory", h("code", {}, g.directory_url)))),
      button("globalconf.generate", async () => {
        await api("POST", "/api/v1/global-configuration/generate");
        reload();
      }),
      h("h2", {}, t("globalconf.keys")),
      h("ul", { id: "signing-keys" }, g.signing_keys.map((k) => h("li", {}, `#${k.id} `, h("code", {}, k.hash.slice(0, 16), "…"), " ",
        h("span", { class: k.active ? "ok" : "" }, t(k.active ? "globalconf.active" : "globalconf.inactive"))))),
      h("p", {}, h("a", { href: "/api/v1/anchor", download: `configuration-anchor-${g.instance}.xml`, id: "anchor" }, t("globalconf.anchor")),
        " — ", t("globalconf.anchor_note")));
  },
});
