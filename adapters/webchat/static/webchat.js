// The web chat page. Who you are is the gateway's business: the session cookie it set on this
// page's first visit (HttpOnly, so this script never sees it) travels with every request.
(() => {
  const log = document.getElementById("log"), form = document.getElementById("form");
  const input = document.getElementById("text"), send = document.getElementById("send");
  const picker = document.getElementById("image"), chosen = document.getElementById("chosen");
  const json = {"content-type": "application/json"};

  // The browser's IANA time zone, for the assistant's clock (docs/tools.md); none when the browser hides it.
  function timeZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined; } catch (_) { return undefined; }
  }

  function bubble(cls, text) {
    const el = document.createElement("div");
    el.className = "msg " + cls;
    el.textContent = text;
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }
  function notice(text) {
    const el = document.createElement("div");
    el.className = "notice"; el.textContent = text; log.appendChild(el);
    log.scrollTop = log.scrollHeight;
  }
  function rating(el, messageId) {
    const meta = document.createElement("div");
    meta.className = "meta";
    for (const [value, label] of [[1, "👍"], [-1, "👎"]]) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.title = value > 0 ? "Good answer" : "Bad answer";
      b.dataset.value = String(value);
      b.onclick = async () => {
        meta.querySelectorAll("button").forEach(x => x.classList.remove("on"));
        b.classList.add("on");
        await fetch("/api/rating", {method: "POST", headers: json, credentials: "same-origin",
          body: JSON.stringify({message_id: messageId, value})});
      };
      meta.appendChild(b);
    }
    el.appendChild(meta);
  }

  function finalBubble(el, body) {
    el.className = "msg bot" + (body.reason ? " degraded" : "");
    el.textContent = body.text;
    el.dataset.messageId = body.message_id;
    for (const item of body.attachments || []) {
      if (item.mime_type.startsWith("audio/")) {
        const audio = document.createElement("audio");
        audio.controls = true; audio.src = item.url; audio.autoplay = true;
        el.appendChild(audio);
      }
    }
    rating(el, body.message_id);
  }

  // Reads the Server-Sent Events of one answer: each "text" event is the whole answer so far.
  async function follow(response) {
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "", el = null;
    const show = (cls, text) => {
      if (!el) el = bubble(cls, text);
      el.className = "msg " + cls; el.textContent = text;
      log.scrollTop = log.scrollHeight;
    };
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (!data) continue;
        const body = JSON.parse(data);
        if (name === "typing" && !el) show("bot typing", "typing");
        else if (name === "text") show("bot streaming", body.text);
        else if (name === "reply") { show("bot", ""); finalBubble(el, body); return; }
        else if (name === "timeout") { if (el && el.classList.contains("typing")) el.remove(); notice(body.detail); return; }
      }
    }
  }

  fetch("/api/session", {credentials: "same-origin"})
    .then(r => r.json())
    .then(s => { document.getElementById("who").textContent = s.user_id || ""; })
    .catch(() => {});

  picker.addEventListener("change", () => {
    const file = picker.files[0];
    chosen.hidden = !file; chosen.textContent = file ? file.name : "";
  });

  // An image goes up first (POST /api/upload, the file itself as the body); the message names its id.
  async function upload(file) {
    const response = await fetch("/api/upload", {method: "POST", headers: {"content-type": file.type},
      credentials: "same-origin", body: file});
    const body = await response.json();
    if (!response.ok) throw new Error(body.notice || body.detail || ("upload failed: " + response.status));
    return body.upload_id;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim(), file = picker.files[0];
    if (!text && !file) return;
    input.value = ""; send.disabled = true;
    const mine = bubble("me", text);
    if (file) {
      const img = document.createElement("img");
      img.alt = file.name; img.src = URL.createObjectURL(file);
      mine.appendChild(img);
      picker.value = ""; chosen.hidden = true;
    }
    const messageId = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[-.]/g, "");
    try {
      const images = file ? [await upload(file)] : [];
      // The streaming endpoint: "typing", then the answer as it is written, then the final reply.
      const response = await fetch("/api/chat/stream", {method: "POST", headers: json, credentials: "same-origin",
        body: JSON.stringify({message_id: messageId, text, images, timezone: timeZone()})});
      if (!response.ok) {
        const body = await response.json();
        notice(body.notice || body.detail || ("Error " + response.status));
      } else {
        await follow(response);
      }
    } catch (err) {
      notice(err instanceof TypeError ? "The gateway is unreachable: " + err : err.message);
    } finally {
      send.disabled = false; input.focus();
    }
  });
  input.focus();
})();
