// The home page of a member in a chat: what was shared into it and posted to it, the
// member's notifications, and a form to share an app. Reads /.webxdc-rt/home/state and
// polls it; renders with DOM calls only (every text comes from members and apps).
"use strict";
(() => {
  const STATE_PATH = "/.webxdc-rt/home/state";
  const SHARE_PATH = "/.webxdc-rt/home/share";
  const SEEN_KEY = "webxdc-rt-seen-notification";
  const $ = (id) => document.getElementById(id);

  let pollMs = 3000;
  let maxUpload = Infinity;
  let timer = null;
  let stopped = false;
  let chatTitle = "webxdc-rt";
  let loadedUpTo = null; // newest notification at first load: later ones are news
  let notifiedUpTo = 0;
  let notes = [];
  let announcedUpTo = null; // the newest message and notification already said

  const seenUpTo = () => Number(localStorage.getItem(SEEN_KEY)) || 0;
  const markSeen = (serial) => {
    if (serial > seenUpTo()) localStorage.setItem(SEEN_KEY, String(serial));
  };
  const canNotify = () => "Notification" in window && Notification.permission === "granted";

  function el(tag, props, ...children) {
    const element = document.createElement(tag);
    Object.assign(element, props || {});
    for (const child of children) if (child !== null && child !== undefined) element.append(child);
    return element;
  }

  const when = (seconds) => new Date(seconds * 1000).toLocaleString();
  const size = (bytes) => bytes < 1024 ? `${bytes} B`
    : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

  // Each list is brought up to date in place: items that did not change keep their elements,
  // so a link the keyboard is on stays focused while news arrive around it. If the focused
  // item itself changed or went, the focus goes to what replaced it, else to the section.
  function reconcile(listId, items, keyOf, build, emptyId) {
    const list = $(listId);
    const wanted = new Map(items.map((item) => [String(keyOf(item)), JSON.stringify(item)]));
    const focus = whereFocusIs(list);
    for (const child of [...list.children]) {
      if (wanted.get(child.dataset.key) !== child.dataset.signature) child.remove();
    }
    let next = list.firstElementChild;
    for (const item of items) {
      const key = String(keyOf(item));
      if (next && next.dataset.key === key) {
        next = next.nextElementSibling;
        continue;
      }
      let node = [...list.children].find((child) => child.dataset.key === key);
      if (!node) {
        node = build(item);
        node.dataset.key = key;
        node.dataset.signature = wanted.get(key);
      }
      list.insertBefore(node, next);
    }
    $(emptyId).hidden = items.length > 0;
    if (focus && !list.contains(document.activeElement)) putFocusBack(list, focus);
  }

  const FOCUSABLE = "a[href], button, input, [tabindex]";

  function whereFocusIs(list) {
    const active = document.activeElement;
    const item = active && list.contains(active) ? active.closest("li") : null;
    if (!item) return null;
    return { key: item.dataset.key, index: [...item.querySelectorAll(FOCUSABLE)].indexOf(active),
             position: [...list.children].indexOf(item) };
  }

  function putFocusBack(list, focus) {
    const item = [...list.children].find((child) => child.dataset.key === focus.key)
      || list.children[Math.min(focus.position, list.children.length - 1)];
    const targets = item ? [...item.querySelectorAll(FOCUSABLE)] : [];
    const target = targets[Math.max(0, Math.min(focus.index, targets.length - 1))]
      || list.closest("section").querySelector("h2");
    target.focus();
  }

  function appItem(app) {
    const icon = app.icon
      ? el("img", { src: app.icon, alt: "" })
      : el("span", { className: "no-icon", ariaHidden: "true" }, (app.name || "?").slice(0, 1));
    const link = el("a", { href: app.url, target: "_blank", rel: "noopener" }, icon,
      el("span", { className: "name" }, app.name));
    link.dataset.app = app.id;
    if (app.shared_by) link.title = `Shared by ${app.shared_by}`;
    return el("li", {}, link);
  }

  function messageItem(message) {
    const meta = [message.member, message.app, when(message.time)].filter(Boolean).join(" · ");
    const item = el("li", {}, el("div", { className: "meta" }, meta));
    item.dataset.message = String(message.id);
    if (message.text !== null) item.append(el("div", { className: "text" }, message.text));
    if (message.file) {
      const link = el("a", { className: "file", href: message.file.url, download: message.file.name },
        `Download ${message.file.name} (${size(message.file.size)})`);
      item.append(el("div", {}, link));
    }
    return item;
  }

  function noteItem([note, unread]) {
    const meta = [note.app, note.from, when(note.time)].filter(Boolean).join(" · ");
    const item = el("li", { className: unread ? "unread" : "" },
      el("div", { className: "meta" }, unread ? el("span", { className: "new-tag" }, "New") : null,
        meta),
      el("div", { className: "text" }, note.text));
    item.dataset.serial = String(note.serial);
    return item;
  }

  function showNotifications() {
    const newest = notes.length ? notes[notes.length - 1].serial : 0;
    if (loadedUpTo === null) loadedUpTo = newest;
    if (canNotify()) {
      // News arriving while the page is open go to the system; they count as seen.
      for (const note of notes) {
        if (note.serial > Math.max(loadedUpTo, notifiedUpTo, seenUpTo())) {
          new Notification(note.app || chatTitle, { body: note.text, tag: `webxdc-rt-${note.serial}` });
          markSeen(note.serial);
        }
      }
      notifiedUpTo = Math.max(notifiedUpTo, newest);
    }
    reconcile("notifications", notes.map((n) => [n, n.serial > seenUpTo()]),
      ([note]) => note.serial, noteItem, "no-notifications");
    const unread = notes.filter((note) => note.serial > seenUpTo()).length;
    const badge = $("badge");
    // The badge goes once the news are read; the keyboard lands on what they were about.
    if (unread === 0 && document.activeElement === badge) $("notifications-title").focus();
    badge.hidden = unread === 0;
    badge.textContent = `${unread} new`;
    document.title = unread ? `(${unread}) ${chatTitle}` : chatTitle;
    $("enable-notifications").hidden =
      !("Notification" in window) || Notification.permission !== "default";
  }

  function render(state) {
    chatTitle = `${state.chat} · webxdc-rt`;
    $("chat-name").textContent = state.chat;
    $("who").textContent = `You are ${state.member}`;
    pollMs = state.poll_interval_ms;
    maxUpload = state.max_upload_bytes;
    // The operator may keep members from sharing apps; the host refuses them anyway.
    $("share-form").hidden = !state.uploads;
    reconcile("apps", state.apps, (app) => app.id, appItem, "no-apps");
    reconcile("messages", state.messages, (message) => message.id, messageItem, "no-messages");
    announce(state.messages, state.notifications);
    notes = state.notifications;
    showNotifications();
  }

  // News since the last refresh are said once, politely, by the live region; what was
  // there at the first load is not news.
  function announce(messages, notifications) {
    const newestMessage = Math.max(0, ...messages.map((message) => message.id));
    const newestNote = Math.max(0, ...notifications.map((note) => note.serial));
    if (announcedUpTo !== null) {
      const said = [
        ...notifications.filter((note) => note.serial > announcedUpTo.note
          && note.serial > seenUpTo())
          .map((note) => `New notification${note.app ? ` from ${note.app}` : ""}: ${note.text}`),
        ...messages.filter((message) => message.id > announcedUpTo.message)
          .map((message) => `New message${message.member ? ` from ${message.member}` : ""}${
            message.text ? `: ${message.text}` : ""}`),
      ];
      if (said.length) $("news").textContent = said.join(". ");
    }
    announcedUpTo = { message: newestMessage, note: newestNote };
  }

  function problem(text) {
    $("problem").textContent = text;
    $("problem").hidden = !text;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const response = await fetch(STATE_PATH, { cache: "no-store" });
      if (response.status === 403 || response.status === 404) {
        stopped = true;
        problem("This link no longer works: ask for a new one.");
        return;
      }
      if (!response.ok) throw new Error(`the host answered ${response.status}`);
      render(await response.json());
      problem("");
    } catch (error) {
      problem(`Could not reach the host (${error.message}); trying again.`);
    }
    if (!stopped) timer = setTimeout(refresh, pollMs);
  }

  async function share(event) {
    event.preventDefault();
    const status = $("share-status");
    const file = $("share-file").files[0];
    if (!file) return;
    if (file.size > maxUpload) {
      status.textContent = `${file.name} is ${size(file.size)}; at most ${size(maxUpload)} can be shared.`;
      return;
    }
    status.textContent = `Sharing ${file.name}…`;
    try {
      const response = await fetch(SHARE_PATH, {
        method: "POST", body: file,
        headers: { "Content-Type": "application/octet-stream",
                   "X-File-Name": encodeURIComponent(file.name) },
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        status.textContent = `Not shared: ${answer.error ? answer.error.message : response.status}`;
        return;
      }
      status.textContent = `Shared ${answer.app.name}.`;
      $("share-form").reset();
      refresh();
    } catch (error) {
      status.textContent = `Not shared: ${error.message}`;
    }
  }

  $("share-form").addEventListener("submit", share);
  $("badge").addEventListener("click", () => {
    if (notes.length) markSeen(notes[notes.length - 1].serial);
    showNotifications();
  });
  $("enable-notifications").addEventListener("click", async () => {
    await Notification.requestPermission();
    showNotifications();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !stopped) refresh();
  });
  refresh();
})();
