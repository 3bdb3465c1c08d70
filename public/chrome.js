// Small fixes to Chainlit's own page (loaded through custom_js in .chainlit/config.toml).
//
// 1. The Hugging Face token and the Argilla key in the chat settings are secrets: Chainlit 2.12's
//    TextInput has no password type, so their fields are turned into password fields whenever
//    they appear (the settings panel is mounted and unmounted by React).
// 2. Opening another user's conversation: the server refuses the connection, and Chainlit can
//    only say "the app is not answering" (common.status.error.serverConnection, also shown when
//    the server is down). When the app does answer and says the conversation is not this user's,
//    that sentence is replaced by one that says so.
// 3. A few notices and screen-reader labels Chainlit writes in English whatever the language (not
//    in its translation files), said in Romanian for a Romanian browser.
(() => {
  "use strict";

  const SECRET_FIELDS = ["hf_token", "argilla_api_key"];

  // Chainlit picks its translation from navigator.language (see .chainlit/translations/).
  const NOT_YOURS = {
    en: "This conversation is not yours: it belongs to another user. Start a new chat, or open one of yours from Past Chats.",
    ro: "Această conversație nu este a dumneavoastră: aparține altui utilizator. Începeți o conversație nouă sau deschideți una dintre ale dumneavoastră din Conversații anterioare.",
  };

  // Chainlit's hard-coded English notices (toasts) → Romanian, matched at the start of the text
  const HARD_CODED = {
    ro: [
      ["Couldn't resume chat", "Conversația nu a putut fi redeschisă"],
      ["Failed to load thread", "Conversația nu a putut fi încărcată"],
      ["Error fetching threads", "Lista conversațiilor nu a putut fi încărcată"],
      ["Failed to copy", "Copierea nu a reușit"],
    ],
  };

  // Chainlit's hard-coded English screen-reader labels → Romanian, matched whole
  const HARD_CODED_LABELS = {
    ro: {
      Close: "Închide",
      "Toggle theme": "Schimbă tema",
      "Toggle Sidebar": "Arată sau ascunde bara laterală",
      "More pages": "Mai multe pagini",
      "Next slide": "Următoarea imagine",
      "Previous slide": "Imaginea anterioară",
      "View PDF": "Deschide PDF-ul",
    },
  };

  // The app may be served under a path prefix: ask the server this script came from.
  const script = document.currentScript && document.currentScript.src;
  const base = script ? script.replace(/\/public\/[^/]*$/, "") : "";

  function maskSecrets() {
    for (const id of SECRET_FIELDS) {
      const field = document.getElementById(id);
      if (field instanceof HTMLInputElement && field.type !== "password") {
        field.type = "password";
        // "off" is ignored for password fields by Chrome, which would then offer (and autofill)
        // the sign-in password here; "new-password" keeps saved passwords out of it.
        field.autocomplete = "new-password";
        field.spellcheck = false;
        field.setAttribute("data-1p-ignore", "");
        field.setAttribute("data-lpignore", "true");
      }
    }
  }

  function language() {
    const lang = (navigator.language || "en").toLowerCase();
    return lang.split("-")[0];
  }

  // thread id → true (not this user's), false (it is, or the app does not answer), or a pending check
  const verdicts = new Map();
  // Chainlit leaves /thread/<id> for / when it cannot open a thread: remember the one asked for
  // until the error has been gone a while (React may unmount and mount the alert again at once)
  let asked = null;
  let forget = null;

  function threadInAddress() {
    const match = window.location.pathname.match(/\/thread\/([^/?#]+)/);
    return match ? match[1] : null;
  }

  function explainRefusal() {
    asked = threadInAddress() || asked;
    const alert = document.getElementById("session-error");
    if (!alert) {
      if (asked && !forget) {
        forget = setTimeout(() => {
          forget = null;
          if (!document.getElementById("session-error")) asked = threadInAddress();
        }, 3000);
      }
      return;
    }
    if (forget) {
      clearTimeout(forget);
      forget = null;
    }
    const text = NOT_YOURS[language()];
    if (!asked || !text) return; // a language we have no sentence for keeps Chainlit's own
    const thread = asked;
    const verdict = verdicts.get(thread);
    if (verdict === true) setText(alert, text); // also after React rendered the alert again
    if (verdict === undefined) {
      verdicts.set(
        thread,
        notYours(thread).then((yes) => {
          verdicts.set(thread, yes);
          if (yes) update();
        }),
      );
    }
  }

  async function notYours(thread) {
    try {
      const me = await fetch(`${base}/user`, { credentials: "include" });
      if (!me.ok) return false; // signed out: Chainlit sends the user to the sign-in page
      const reply = await fetch(`${base}/project/thread/${encodeURIComponent(thread)}`, {
        credentials: "include",
      });
      // Chainlit answers 401 for another user's thread (and 404 for none, which the socket allows)
      return reply.status === 401 || reply.status === 403;
    } catch {
      return false; // the server really is not answering: Chainlit's sentence is the true one
    }
  }

  // Changes the words of the alert's text node in place: React keeps its nodes, so nothing breaks
  // when it re-renders or removes the alert.
  function setText(alert, text) {
    const walker = document.createTreeWalker(alert, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.nodeValue.trim()) {
        if (node.nodeValue !== text) node.nodeValue = text;
        return;
      }
    }
  }

  function translateNotices() {
    const labels = HARD_CODED_LABELS[language()];
    if (labels) {
      for (const label of document.querySelectorAll(".sr-only")) {
        const node = label.firstChild;
        if (label.childNodes.length === 1 && node.nodeType === Node.TEXT_NODE) {
          const translated = labels[node.nodeValue];
          if (translated) node.nodeValue = translated;
        }
      }
    }
    const table = HARD_CODED[language()];
    if (!table) return;
    for (const toaster of document.querySelectorAll("[data-sonner-toaster]")) {
      const walker = document.createTreeWalker(toaster, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const [english, translated] of table) {
          if (node.nodeValue.startsWith(english)) {
            node.nodeValue = translated + node.nodeValue.slice(english.length);
          }
        }
      }
    }
  }

  function update() {
    maskSecrets();
    explainRefusal();
    translateNotices();
  }

  new MutationObserver(update).observe(document.documentElement, {
    childList: true,
    subtree: true,
    characterData: true,
    attributes: true,
    attributeFilter: ["type", "id"],
  });
  update();
})();
