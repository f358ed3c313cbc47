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
