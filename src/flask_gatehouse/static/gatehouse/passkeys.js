/* Gatehouse passkeys: the browser half of the WebAuthn ceremonies.
 *
 * A static file because the pages' Content-Security-Policy allows scripts from 'self' only:
 * nothing inline, no event-handler attributes. The pages mark what this script drives with
 * data-gatehouse hooks, and every button carries its own data-options-url and data-url, so no
 * URL is written here. Each ceremony is the same three steps:
 *   1. POST the options URL, get {"publicKey": <options as JSON>};
 *   2. ask the browser (navigator.credentials.create or .get);
 *   3. POST {"credential": credential.toJSON(), ...} to the data-url, get {"redirect": url}.
 * The browser's JSON helpers (parse*OptionsFromJSON, toJSON) do the base64url work, so there is
 * no hand-written encoding to get wrong. Without them the buttons stay hidden (the `hidden`
 * attribute the templates render) and the pages work as before: password, code.
 */
(function () {
  "use strict";

  const PKC = window.PublicKeyCredential;
  const supported =
    typeof PKC === "function" &&
    typeof PKC.parseCreationOptionsFromJSON === "function" &&
    typeof PKC.parseRequestOptionsFromJSON === "function" &&
    typeof PKC.prototype.toJSON === "function";

  // What each hook asks the browser for, and what it adds to the credential it sends back.
  const CEREMONIES = {
    // Sign-in and re-authentication keep the page's ?next=: the server checks it and answers
    // with the redirect, as the password forms do.
    "passkey-sign-in": { create: false, keepQuery: true, extra: () => ({}) },
    "passkey-add": {
      create: true,
      // Optional: the server names an unnamed passkey itself.
      extra: () => ({ name: valueOf("passkey-name") }),
    },
    "passkey-second-factor": {
      create: false,
      extra: () => ({ trust_browser: Boolean(byId("trust_browser")?.checked) }),
    },
    "passkey-reauthenticate": { create: false, keepQuery: true, extra: () => ({}) },
    // A passkey or security key in place of the code on a form that also takes a password
    // (re-authentication, a reset): the answer goes into the form's hidden field and the form
    // is sent, so the server checks the password and the key together.
    "passkey-second-step": { create: false, fillForm: true, extra: () => ({}) },
    // Sign-up without a password: the options are made for the address and name typed in the
    // sign-up form above (the server checks them as the form would).
    "passkey-sign-up": {
      create: true,
      optionsBody: () => ({ email: valueOf("email"), username: valueOf("username") }),
      extra: () => ({}),
    },
  };

  /** A failure whose message is meant for the user (a server's 4xx sentence, or ours). */
  class ShownError extends Error {}

  function byId(id) {
    return document.getElementById(id);
  }

  function valueOf(id) {
    const input = byId(id);
    return input ? input.value : "";
  }

  /** The page's CSRF token: the same one its HTML forms post, sent as a header the server's
   *  CSRF check reads for JSON requests. */
  function csrfToken() {
    const input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  /** POST JSON; return the JSON answer, or throw a ShownError carrying the server's message. */
  async function postJSON(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrfToken(),
        },
        body: JSON.stringify(body),
      });
    } catch {
      throw new ShownError("We could not reach the server. Check your connection and try again.");
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").includes("application/json")) {
      data = await response.json().catch(() => null);
    }
    if (response.ok && data) {
      return data;
    }
    // Our JSON endpoints explain a refusal in error.message; anything else (an HTML error
    // page, a sign-in page after the session ended) gets a sentence of our own.
    const message = data && data.error && data.error.message;
    throw new ShownError(
      message || `Something went wrong (error ${response.status}). Reload the page and try again.`,
    );
  }

  /** The user-facing sentence for an error from navigator.credentials, or null to stay quiet. */
  function describe(error, create) {
    if (error instanceof ShownError) {
      return error.message;
    }
    switch (error && error.name) {
      case "AbortError": // we cancelled it ourselves (a modal request replaced the autofill one)
        return null;
      case "NotAllowedError": // cancelled, timed out, the user not verified, or no passkey here
        return create
          ? "No passkey was created: the request was cancelled, timed out or not allowed. " +
              "You can try again."
          : "No passkey was used: the request was cancelled, timed out, or this device has " +
              "none for this account. You can try again.";
      case "InvalidStateError": // create(): excludeCredentials matched this authenticator
        return "This security key or device is already registered to your account.";
      case "SecurityError": // the site's WebAuthn relying party does not match this address
        return "Passkeys cannot be used on this address. Please tell the site's administrators.";
      default:
        return "Your browser could not complete the passkey request. Try again.";
    }
  }

  /** Steps 2 and 3 for a credential the browser gave us: send it, follow the redirect. */
  async function finish(button, ceremony, credential) {
    if (ceremony.fillForm) {
      button.form.elements.namedItem("passkey_assertion").value = JSON.stringify(
        credential.toJSON(),
      );
      button.form.requestSubmit();
      return;
    }
    let url = button.dataset.url;
    if (ceremony.keepQuery) {
      url += window.location.search;
    }
    const answer = await postJSON(url, { credential: credential.toJSON(), ...ceremony.extra() });
    if (typeof answer.redirect === "string") {
      window.location.assign(answer.redirect);
    } else {
      window.location.reload();
    }
  }

  /** A whole ceremony started by a click: options, the browser's dialog, the result. */
  async function run(button, ceremony) {
    const options = await postJSON(
      button.dataset.optionsUrl,
      ceremony.optionsBody ? ceremony.optionsBody() : {},
    );
    const credential = ceremony.create
      ? await navigator.credentials.create({
          publicKey: PKC.parseCreationOptionsFromJSON(options.publicKey),
        })
      : await navigator.credentials.get({
          publicKey: PKC.parseRequestOptionsFromJSON(options.publicKey),
        });
    if (!credential) {
      throw new ShownError("No passkey was used. You can try again.");
    }
    await finish(button, ceremony, credential);
  }

  /** Show (or clear) a message in the button's role="alert" element. */
  function show(alertBox, message) {
    if (alertBox) {
      alertBox.textContent = message || "";
      // Hidden while empty, so assistive technology and tests see only alerts that say something.
      alertBox.hidden = !message;
    }
  }

  /** Disable the button while `work` runs, so a second click cannot start a second ceremony
   *  (the browser allows one at a time, and each options call replaces the server's challenge). */
  async function busy(button, alertBox, create, work) {
    show(alertBox, "");
    button.disabled = true;
    try {
      await work();
      // On success the page is navigating away: the button stays disabled until it does.
      return true;
    } catch (error) {
      show(alertBox, describe(error, create));
      button.disabled = false;
      // A disabled button drops focus; give it back so the keyboard user is where they were.
      if (document.activeElement === document.body) {
        button.focus();
      }
      return false;
    }
  }

  /** The login page's autofill: a passkey offered in the email field's suggestions, without a
   *  dialog ("conditional mediation"). It waits quietly; a cancel or abort is not an error. */
  function autofill(button, ceremony, alertBox) {
    let controller = null;

    async function start() {
      if (!(await PKC.isConditionalMediationAvailable?.())) {
        return;
      }
      controller = new AbortController();
      const { signal } = controller;
      let credential;
      try {
        const options = await postJSON(button.dataset.optionsUrl, {});
        if (signal.aborted) {
          return;
        }
        credential = await navigator.credentials.get({
          mediation: "conditional",
          publicKey: PKC.parseRequestOptionsFromJSON(options.publicKey),
          signal,
        });
      } catch {
        return; // silent: the password form is right there
      }
      if (credential) {
        // The user picked a passkey: from here a refusal is worth telling them about.
        const ok = await busy(button, alertBox, false, () => finish(button, ceremony, credential));
        if (!ok) {
          start();
        }
      }
    }

    return {
      start,
      // The button's modal request takes over: only one request may be pending.
      stop() {
        if (controller) {
          controller.abort();
          controller = null;
        }
      },
    };
  }

  function wire(button) {
    const ceremony = CEREMONIES[button.dataset.gatehouse];
    const alertBox = button.parentElement.querySelector('[role="alert"]');
    const conditional =
      button.dataset.gatehouse === "passkey-sign-in" &&
      document.querySelector('input[autocomplete~="webauthn"]')
        ? autofill(button, ceremony, alertBox)
        : null;

    button.addEventListener("click", async (event) => {
      // The add button submits its small form on Enter in the name field; keep it from
      // posting the page: the ceremony does the posting.
      event.preventDefault();
      if (button.disabled) {
        return;
      }
      if (conditional) {
        conditional.stop();
      }
      const ok = await busy(button, alertBox, ceremony.create, () => run(button, ceremony));
      // After a failed or cancelled dialog, offer the passkey in the autofill again.
      if (!ok && conditional) {
        conditional.start();
      }
    });

    // Reveal the button, and the form around it when that form was hidden with it (the add
    // form, whose name field is useless without the button).
    button.hidden = false;
    if (button.form && button.form.hidden) {
      button.form.hidden = false;
    }
    if (conditional) {
      conditional.start();
    }
  }

  if (!supported) {
    return; // the buttons stay hidden, the "needs a browser that supports passkeys" notes stay
  }
  for (const note of document.querySelectorAll('[data-gatehouse="passkey-unsupported"]')) {
    note.hidden = true;
  }
  for (const button of document.querySelectorAll("[data-gatehouse]")) {
    if (Object.hasOwn(CEREMONIES, button.dataset.gatehouse)) {
      wire(button);
    }
  }
})();
