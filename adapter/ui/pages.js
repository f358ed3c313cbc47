// The ECHONET Lite adapter's pages (registered with the shell in admin/ui/app.js):
// which discovered devices are published, who decided, what they announced.
"use strict";

Musubi.strings({
  en: {
    "devices.title": "Devices", "devices.id": "Device", "devices.type": "Type", "devices.address": "Address",
    "devices.manufacturer": "Manufacturer", "devices.state": "State", "devices.published": "published",
    "devices.not_published": "not published", "devices.alive": "answering", "devices.silent": "silent",
    "devices.send_only": "send-only", "devices.approve": "Publish", "devices.revoke": "Stop publishing",
    "devices.remove": "Remove", "devices.discover": "Discover now", "devices.found": "Discovery: {nodes} nodes, {new} new, {known} known, {failed} failed",
    "devices.none": "No devices found yet: is the home network reachable?",
    "devices.add": "Add a send-only device", "devices.add_address": "Address", "devices.eoj": "Object (EOJ, 6 hex digits, e.g. 001101)",
    "devices.class": "Device class (e.g. homeAirConditioner or 0x0130)", "devices.action": "For every device of the class",
    "devices.apply": "Apply to the class", "devices.class_needed": "Name a class", "devices.by_class": "By class",
    "devices.properties": "Readable properties",
    "approvals.title": "Consent trail", "approvals.subject": "What", "approvals.decision": "Decision",
    "approvals.by": "By", "approvals.at": "When", "approvals.none": "No decisions yet.",
    "notifications.title": "Announcements", "notifications.device": "Device", "notifications.property": "Property",
    "notifications.value": "Value (hex)", "notifications.at": "Received", "notifications.none": "No announcements yet.",
  },
  ja: {
    "devices.title": "機器", "devices.id": "機器", "devices.type": "種類", "devices.address": "アドレス",
    "devices.manufacturer": "メーカー", "devices.state": "状態", "devices.published": "公開中",
    "devices.not_published": "非公開", "devices.alive": "応答あり", "devices.silent": "応答なし",
    "devices.send_only": "送信専用", "devices.approve": "公開する", "devices.revoke": "公開をやめる",
    "devices.remove": "削除", "devices.discover": "今すぐ探索", "devices.found": "探索: ノード {nodes}、新規 {new}、既知 {known}、失敗 {failed}",
    "devices.none": "機器はまだ見つかっていません。宅内ネットワークに届くか確認してください。",
    "devices.add": "送信専用機器を追加", "devices.add_address": "アドレス", "devices.eoj": "オブジェクト (EOJ、16 進 6 桁、例 001101)",
    "devices.class": "機器クラス (例 homeAirConditioner または 0x0130)", "devices.action": "そのクラスのすべての機器を",
    "devices.apply": "クラスに適用", "devices.class_needed": "クラスを指定してください", "devices.by_class": "クラス単位",
    "devices.properties": "読み取れるプロパティ",
    "approvals.title": "同意の記録", "approvals.subject": "対象", "approvals.decision": "決定",
    "approvals.by": "決定者", "approvals.at": "日時", "approvals.none": "決定はまだありません。",
    "notifications.title": "機器からの通知", "notifications.device": "機器", "notifications.property": "プロパティ",
    "notifications.value": "値 (16 進)", "notifications.at": "受信日時", "notifications.none": "通知はまだありません。",
  },
});

// Unix seconds or RFC 3339 → a date in the user's locale.
const when = (date, v) => date(typeof v === "number" ? v * 1000 : v);

Musubi.page({
  path: "/",
  title: "devices.title",
  nav: true,
  render: async (main, { api, h, t, form, button, reload }) => {
    const enc = encodeURIComponent;
    const devices = await api("GET", "/api/v1/devices");
    const found = h("p", { id: "discovered", role: "status" });
    main.append(button("devices.discover", async () => {
      const f = await api("POST", "/api/v1/discover");
      sessionStorage.setItem("musubi.found", t("devices.found", f));
      reload();
    }), found);
    const said = sessionStorage.getItem("musubi.found");
    if (said) {
      found.textContent = said;
      sessionStorage.removeItem("musubi.found");
    }
    main.append(devices.length
      ? h("table", { id: "devices" },
          h("thead", {}, h("tr", {}, ["devices.id", "devices.type", "devices.address", "devices.manufacturer", "devices.state", "devices.properties"]
            .map((k) => h("th", { scope: "col" }, t(k))), h("th", {}))),
          h("tbody", {}, devices.map((d) => h("tr", { id: `device-${d.id}` },
            h("td", {}, h("code", {}, d.id)), h("td", {}, d.deviceType), h("td", {}, d.address), h("td", {}, d.manufacturer || "—"),
            h("td", { class: "state" }, h("span", { class: d.approved ? "ok" : "" }, t(d.approved ? "devices.published" : "devices.not_published")),
              " · ", t(d.alive ? "devices.alive" : "devices.silent"), d.sendOnly ? ` · ${t("devices.send_only")}` : ""),
            h("td", {}, h("details", {}, h("summary", {}, String(d.get.length)), d.get.join(", "))),
            h("td", {}, d.approved
              ? button("devices.revoke", async () => { await api("POST", `/api/v1/devices/${enc(d.id)}/revoke`); reload(); }, { class: "secondary" })
              : button("devices.approve", async () => { await api("POST", `/api/v1/devices/${enc(d.id)}/approve`); reload(); }),
              " ", button("devices.remove", async () => { await api("DELETE", `/api/v1/devices/${enc(d.id)}`); reload(); }, { class: "secondary" }))))))
      : h("p", {}, t("devices.none")));
    main.append(
      h("h2", {}, t("devices.by_class")),
      form("by-class", [
        { name: "class", label: "devices.class" },
        { name: "action", label: "devices.action", options: [["approve", t("devices.approve")], ["revoke", t("devices.revoke")]] },
      ], "devices.apply", async (v) => {
        if (!v.class.trim()) throw { field: "class", error: t("devices.class_needed") };
        await api("POST", `/api/v1/classes/${enc(v.class.trim())}/${v.action}`);
        reload();
      }),
      h("h2", {}, t("devices.add")),
      form("add-device", [{ name: "address", label: "devices.add_address" }, { name: "eoj", label: "devices.eoj" }], "devices.add", async (v) => {
        await api("POST", "/api/v1/devices", v);
        reload();
      }));
  },
});

Musubi.page({
  path: "/approvals",
  title: "approvals.title",
  nav: true,
  order: 1,
  render: async (main, { api, h, t, date }) => {
    const rows = await api("GET", "/api/v1/approvals");
    main.append(rows.length
      ? h("table", { id: "approvals" },
          h("thead", {}, h("tr", {}, ["approvals.at", "approvals.subject", "approvals.decision", "approvals.by"].map((k) => h("th", { scope: "col" }, t(k))))),
          h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, when(date, r.at)), h("td", {}, r.subject),
            h("td", {}, t(r.approved ? "devices.published" : "devices.not_published")), h("td", {}, r.by)))))
      : h("p", {}, t("approvals.none")));
  },
});

Musubi.page({
  path: "/notifications",
  title: "notifications.title",
  nav: true,
  order: 2,
  render: async (main, { api, h, t, date }) => {
    const rows = await api("GET", "/api/v1/notifications");
    main.append(rows.length
      ? h("table", { id: "notifications" },
          h("thead", {}, h("tr", {}, ["notifications.at", "notifications.device", "notifications.property", "notifications.value"].map((k) => h("th", { scope: "col" }, t(k))))),
          h("tbody", {}, rows.map((n) => h("tr", {}, h("td", {}, when(date, n.at)), h("td", {}, h("code", {}, n.device)),
            h("td", {}, n.epc), h("td", {}, h("code", {}, n.edt))))))
      : h("p", {}, t("notifications.none")));
  },
});
