// Small fixes to Chainlit's own page (loaded through custom_js in .chainlit/config.toml).
//
// 1. The Hugging Face token and the Argilla key in the chat settings are secrets: Chainlit 2.12's
//    TextInput has no password type, so their fields are turned into password fields whenever
//    they appear (the settings panel is mounted and unmounted by React).
// 2. Opening another user's conversation: the server refuses the connection, and Chainlit can
//    only say "the app is not answering" (common.status.error.serverConnection, also shown when
//    the server is down). When the app does answer and says the conversation is not this user's,
//    that sentence is replaced by one that says so.
(() => {
  "use strict";

  const SECRET_FIELDS = ["hf_token", "argilla_api_key"];

  // Chainlit picks its translation from navigator.language (see .chainlit/translations/).
  const NOT_YOURS = {
    en: "This conversation is not yours: it belongs to another user. Start a new chat, or open one of yours from Past Chats.",
    ro: "Această conversație nu este a ta: aparține altui utilizator. Începe o conversație nouă sau deschide una de-a ta din Conversații anterioare.",
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

  let checkedFor = null;

  async function explainRefusal() {
    const alert = document.getElementById("session-error");
    const match = window.location.pathname.match(/\/thread\/([^/?#]+)/);
    if (!alert || !match) {
      checkedFor = null;
      return;
    }
    const sentence = alert.dataset.notYours;
    if (sentence) {
      setText(alert, sentence); // React rendered the old sentence again
      return;
    }
    if (checkedFor === match[1]) return;
    checkedFor = match[1];
    const text = NOT_YOURS[language()];
    if (!text) return; // a language we have no sentence for keeps Chainlit's own
    try {
      const me = await fetch(`${base}/user`, { credentials: "include" });
      if (!me.ok) return; // signed out: Chainlit sends the user to the sign-in page
      const thread = await fetch(`${base}/project/thread/${encodeURIComponent(match[1])}`, {
        credentials: "include",
      });
      // Chainlit answers 401 for another user's thread (404: none at all, which the socket allows)
      if (thread.status !== 401 && thread.status !== 403) return;
    } catch {
      return; // the server really is not answering: Chainlit's sentence is the true one
    }
    alert.dataset.notYours = text;
    setText(alert, text);
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

  function update() {
    maskSecrets();
    explainRefusal();
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
