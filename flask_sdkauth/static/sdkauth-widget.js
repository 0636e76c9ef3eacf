/*
 * flask-sdkauth widget: phone authentication in the browser, without dependencies.
 *
 * Every element with the class "sdkauth-widget" becomes a widget. Its data
 * attributes (written by the Jinja helper sdkauth.widget()) configure it:
 *   data-widget-id   the widget's id (required)
 *   data-api         where the routes are mounted ("" for the site root)
 *   data-token       a widget token, or
 *   data-token-url   a URL answering {"token": "..."} (fetched when needed)
 *   data-lang        "ru" or "en" (default: the page's <html lang>)
 *   data-texts       JSON object overriding any text below
 *   data-captcha-site-key  the captcha provider's public site key
 *
 * The flow follows the SDK contract: getWidget, send, long-poll the channel (and
 * keep polling after "sent"), checkCode or wait for a codeless confirmation,
 * resend, and on success a bubbling "sdkauth:success" event whose detail is
 * {requestId, recipient}. The host page posts those to its own backend, which must
 * call sdkauth.check_status_and_complete before trusting them.
 */
(function () {
  "use strict";
  if (window.SdkAuthWidget) {
    window.SdkAuthWidget.initAll();
    return;
  }

  var TEXTS = {
    ru: {
      phoneLabel: "Номер телефона",
      phonePlaceholder: "+7 999 123-45-67",
      sendButton: "Получить код",
      sending: "Отправляем…",
      codeLabel: "Код из сообщения",
      codeSentBy: "Мы отправили код: {label}.",
      checkButton: "Подтвердить",
      wrongCode: "Неверный код.",
      attemptsLeft: "Осталось попыток: {count}.",
      resendButton: "Отправить код ещё раз",
      resendIn: "Повторная отправка через {seconds} с",
      resent: "Код отправлен ещё раз.",
      channelChanged: "Способ подтверждения изменился.",
      codelessWait: "Подтвердите вход: {label}.",
      matchNumber: "Выберите на телефоне число {number}.",
      success: "Номер подтверждён.",
      restart: "Начать заново",
      captchaRequired: "Подтвердите, что вы не робот.",
      failed: "Не удалось выполнить запрос. Попробуйте ещё раз.",
      widgetBlocked: "Вход временно недоступен.",
    },
    en: {
      phoneLabel: "Phone number",
      phonePlaceholder: "+1 201 555 0123",
      sendButton: "Get a code",
      sending: "Sending…",
      codeLabel: "Code from the message",
      codeSentBy: "We sent you a code: {label}.",
      checkButton: "Confirm",
      wrongCode: "Wrong code.",
      attemptsLeft: "Attempts left: {count}.",
      resendButton: "Send the code again",
      resendIn: "You can ask again in {seconds} s",
      resent: "The code was sent again.",
      channelChanged: "The way to confirm has changed.",
      codelessWait: "Confirm the sign-in: {label}.",
      matchNumber: "Pick the number {number} on your phone.",
      success: "Your number is confirmed.",
      restart: "Start again",
      captchaRequired: "Please confirm you are not a robot.",
      failed: "The request failed. Please try again.",
      widgetBlocked: "Sign-in is not available right now.",
    },
  };

  var CAPTCHA_SCRIPTS = {
    google: "https://www.google.com/recaptcha/api.js?render=",
    yandex: "https://smartcaptcha.yandexcloud.net/captcha.js",
    cloudflare: "https://challenges.cloudflare.com/turnstile/v0/api.js",
  };

  function format(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, key) {
      return values[key] === undefined ? "" : String(values[key]);
    });
  }

  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") node.textContent = attributes[name];
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), attributes[name]);
      else node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function ApiError(body, status) {
    this.type = (body && body.type) || "InternalServerErrorException";
    this.message = (body && body.message) || "";
    this.status = status;
  }

  function Widget(container) {
    this.container = container;
    this.widgetId = container.getAttribute("data-widget-id");
    this.api = (container.getAttribute("data-api") || "").replace(/\/$/, "");
    this.token = container.getAttribute("data-token") || null;
    this.tokenUrl = container.getAttribute("data-token-url") || null;
    this.siteKey = container.getAttribute("data-captcha-site-key") || "";
    var lang = (container.getAttribute("data-lang") || document.documentElement.lang || "ru")
      .slice(0, 2).toLowerCase();
    this.texts = Object.assign({}, TEXTS[lang] || TEXTS.ru,
      JSON.parse(container.getAttribute("data-texts") || "{}"));
    this.flow = 0;  // bumps on every new attempt, so stale loops stop
    this.build();
    this.start();
  }

  Widget.prototype.t = function (key, values) {
    return format(this.texts[key] || "", values || {});
  };

  Widget.prototype.build = function () {
    var id = "sdkauth-" + Math.random().toString(36).slice(2);
    this.ids = { phone: id + "-phone", code: id + "-code" };
    this.title = element("h2", { class: "sdkauth-title" });
    this.body = element("div", { class: "sdkauth-body" });
    this.status = element("p", { class: "sdkauth-status", "aria-live": "polite" });
    this.error = element("p", { class: "sdkauth-error", role: "alert" });
    this.container.textContent = "";
    this.container.appendChild(this.title);
    this.container.appendChild(this.body);
    this.container.appendChild(this.status);
    this.container.appendChild(this.error);
  };

  Widget.prototype.say = function (text) { this.status.textContent = text || ""; };
  Widget.prototype.fail = function (text) { this.error.textContent = text || ""; };

  // -- HTTP --------------------------------------------------------------------

  Widget.prototype.getToken = function () {
    var self = this;
    if (self.token || !self.tokenUrl) return Promise.resolve(self.token);
    return fetch(self.tokenUrl, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) { self.token = body.token; return self.token; });
  };

  Widget.prototype.call = function (method, path, body) {
    var self = this;
    return self.getToken().then(function (token) {
      var headers = { Accept: "application/json" };
      if (token) headers.Authorization = "Bearer " + token;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      return fetch(self.api + path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        throw new ApiError(data, response.status);
      });
    });
  };

  // -- steps ---------------------------------------------------------------------

  Widget.prototype.start = function () {
    var self = this;
    self.flow += 1;
    self.fail("");
    self.say("");
    self.call("GET", "/widget/" + self.widgetId).then(function (widget) {
      self.title.textContent = widget.name;
      if (widget.isBlocked || !widget.isActive) {
        self.body.textContent = "";
        self.fail(self.t("widgetBlocked"));
        return;
      }
      self.showPhoneForm(widget);
    }).catch(function (error) { self.showError(error); });
  };

  Widget.prototype.showPhoneForm = function (widget) {
    var self = this;
    var input = element("input", {
      id: self.ids.phone, type: "tel", name: "recipient", autocomplete: "tel",
      required: "required", placeholder: self.t("phonePlaceholder"),
    });
    var captchaBox = element("div", { class: "sdkauth-captcha" });
    var button = element("button", { type: "submit", text: self.t("sendButton") });
    var form = element("form", { class: "sdkauth-phone", novalidate: "novalidate" }, [
      element("label", { for: self.ids.phone, text: self.t("phoneLabel") }),
      input, captchaBox, button,
    ]);
    self.captchaToken = null;
    if (widget.captchaIsRequired && widget.captchaProvider) {
      self.say(self.t("captchaRequired"));
      self.renderCaptcha(widget.captchaProvider, captchaBox);
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.disabled) return;  // a send is already on its way
      button.disabled = true;
      self.send(input.value.trim()).then(function () { button.disabled = false; });
    });
    self.body.textContent = "";
    self.body.appendChild(form);
    input.focus();
  };

  Widget.prototype.renderCaptcha = function (provider, box) {
    var self = this;
    var src = CAPTCHA_SCRIPTS[provider];
    if (!src) return;
    var script = element("script", { src: provider === "google" ? src + self.siteKey : src, async: "async" });
    script.onload = function () {
      if (provider === "cloudflare" && window.turnstile) {
        window.turnstile.render(box, { sitekey: self.siteKey, callback: function (token) { self.captchaToken = token; } });
      } else if (provider === "yandex" && window.smartCaptcha) {
        window.smartCaptcha.render(box, { sitekey: self.siteKey, callback: function (token) { self.captchaToken = token; } });
      } else if (provider === "google" && window.grecaptcha) {
        self.captchaToken = null;  // v3 tokens are fetched at send time
        self.recaptcha = window.grecaptcha;
      }
    };
    document.head.appendChild(script);
  };

  Widget.prototype.freshCaptchaToken = function () {
    var self = this;
    if (!self.recaptcha) return Promise.resolve(self.captchaToken);
    return new Promise(function (resolve) {
      self.recaptcha.ready(function () {
        self.recaptcha.execute(self.siteKey, { action: "sdkauth_send" }).then(resolve);
      });
    });
  };

  Widget.prototype.send = function (recipient) {
    var self = this;
    self.fail("");
    self.say(self.t("sending"));
    return self.freshCaptchaToken().then(function (captchaToken) {
      var body = { widgetId: self.widgetId, recipient: recipient };
      if (captchaToken) body.captchaToken = captchaToken;
      return self.call("POST", "/", body);
    }).then(function (answer) {
      self.flow += 1;
      self.session = { requestId: answer.requestId, recipient: recipient, flow: self.flow };
      self.pollChannel(self.session);
    }).catch(function (error) { self.showError(error); });
  };

  Widget.prototype.alive = function (session) {
    return this.session === session && session.flow === this.flow;
  };

  // Long-poll the channel for as long as the session lives (spec §1.2 step 4).
  Widget.prototype.pollChannel = function (session) {
    var self = this;
    if (!self.alive(session)) return;
    self.call("GET", "/longPolling/" + session.requestId + "/channel").then(function (channel) {
      if (!self.alive(session)) return;
      self.showChannel(session, channel);
      if (channel.status === "confirmed") return self.succeed(session);
      self.pollChannel(session);
    }).catch(function (error) {
      if (!self.alive(session)) return;
      if (error.type === "LongPollingTimeoutException") return self.pollChannel(session);
      self.handleSessionError(session, error, function () { self.pollChannel(session); });
    });
  };

  Widget.prototype.refetchChannel = function (session) {
    var self = this;
    return self.call("GET", "/" + session.requestId + "/channel").then(function (channel) {
      if (self.alive(session)) self.showChannel(session, channel);
    });
  };

  // The channel ended unsuccessfully: restart it (once, however many loops notice)
  // and draw it again (spec §1.2 step 6).
  Widget.prototype.restartChannel = function (session) {
    var self = this;
    if (!session.restarting) {
      session.restarting = self.call("POST", "/" + session.requestId + "/resend")
        .catch(function (error) {
          // Another loop restarted it a moment ago: nothing more to do.
          if (error.type !== "RestartCooldownActiveException") throw error;
        })
        .then(function () { session.drawn = null; return self.refetchChannel(session); })
        .then(function () { session.restarting = null; },
              function (error) { session.restarting = null; throw error; });
    }
    return session.restarting;
  };

  Widget.prototype.handleSessionError = function (session, error, loop) {
    var self = this;
    if (error.type === "ResendChannelException") {
      return self.restartChannel(session)
        .then(function () { if (loop) loop(session); })
        .catch(function (again) { self.showError(again); });
    }
    if (error.type === "ChannelChangedException") {
      self.say(self.t("channelChanged"));
      return self.refetchChannel(session).catch(function (again) {
        return self.handleSessionError(session, again, loop);
      });
    }
    self.showError(error);
  };

  Widget.prototype.showChannel = function (session, channel) {
    var key = [channel.type, channel.status, channel.codeType,
      JSON.stringify(channel.payload || {})].join("|");
    session.channel = channel;
    this.updateAttempts(channel);
    if (session.drawn === key) return;
    session.drawn = key;
    if (channel.status === "wait") {
      this.body.textContent = "";
      this.say(this.t("sending"));
    } else if (channel.status === "sent" && channel.codeType === "codeless") {
      this.showCodeless(session, channel);
    } else if (channel.status === "sent") {
      this.showCodeForm(session, channel);
    }
  };

  Widget.prototype.showCodeForm = function (session, channel) {
    var self = this;
    var length = (channel.settings && channel.settings.code && channel.settings.code.length) || 6;
    var input = element("input", {
      id: self.ids.code, name: "code", inputmode: "numeric", autocomplete: "one-time-code",
      pattern: "[0-9]*", maxlength: String(length), size: String(length), required: "required",
    });
    var check = element("button", { type: "submit", text: self.t("checkButton") });
    var resend = element("button", { type: "button", class: "sdkauth-resend", text: self.t("resendButton") });
    self.attempts = element("p", { class: "sdkauth-attempts" });
    var form = element("form", { class: "sdkauth-code", novalidate: "novalidate" }, [
      element("p", { text: self.t("codeSentBy", { label: channel.label }) }),
      element("label", { for: self.ids.code, text: self.t("codeLabel") }),
      input, check, self.attempts, resend,
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (check.disabled) return;  // a check is already on its way
      check.disabled = true;
      self.checkCode(session, input.value.trim()).then(function () {
        check.disabled = false;
        input.select();
      });
    });
    resend.addEventListener("click", function () { self.resend(session); });
    self.body.textContent = "";
    self.body.appendChild(form);
    self.updateAttempts(channel);
    self.startCooldown(session, resend, (channel.settings && channel.settings.restartCooldown) || 0);
    self.say("");
    input.focus();
  };

  Widget.prototype.updateAttempts = function (channel) {
    if (this.attempts && channel.codeType === "code") {
      this.attempts.textContent = this.t("attemptsLeft", { count: channel.remainingCodeAttempts });
    }
  };

  Widget.prototype.startCooldown = function (session, button, seconds) {
    var self = this;
    var until = Date.now() + seconds * 1000;
    clearInterval(self.cooldownTimer);
    function tick() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (!self.alive(session) || left <= 0) {
        clearInterval(self.cooldownTimer);
        button.disabled = false;
        button.textContent = self.t("resendButton");
        return;
      }
      button.disabled = true;
      button.textContent = self.t("resendIn", { seconds: left });
    }
    tick();
    self.cooldownTimer = setInterval(tick, 1000);
  };

  Widget.prototype.checkCode = function (session, code) {
    var self = this;
    self.fail("");
    return self.call("POST", "/" + session.requestId + "/checkCode", { code: code })
      .then(function () { self.succeed(session); })
      .catch(function (error) {
        if (error.type === "InvalidCodeException") {
          self.fail(self.t("wrongCode"));
          return self.refetchChannel(session).catch(function () {});
        }
        if (error.type === "ResendChannelException" || error.type === "ChannelChangedException") {
          return self.handleSessionError(session, error, null);
        }
        self.showError(error);
      });
  };

  Widget.prototype.resend = function (session) {
    var self = this;
    self.fail("");
    return self.call("POST", "/" + session.requestId + "/resend").then(function () {
      session.drawn = null;
      return self.refetchChannel(session).then(function () { self.say(self.t("resent")); });
    }).catch(function (error) {
      if (error.type === "RestartCooldownActiveException") return self.fail(error.message);
      if (error.type === "ResendChannelException") return self.handleSessionError(session, error, null);
      self.showError(error);
    });
  };

  Widget.prototype.showCodeless = function (session, channel) {
    var self = this;
    var children = [element("p", { text: self.t("codelessWait", { label: channel.label }) })];
    var number = channel.payload && channel.payload.matchNumber;
    if (number) {
      children.push(element("p", { class: "sdkauth-match", text: self.t("matchNumber", { number: number }) }));
    }
    self.body.textContent = "";
    self.body.appendChild(element("div", { class: "sdkauth-codeless" }, children));
    self.say("");
    self.pollStatus(session);
  };

  Widget.prototype.pollStatus = function (session) {
    var self = this;
    if (!self.alive(session) || session.statusPolling) return;
    session.statusPolling = true;
    var query = "?recipient=" + encodeURIComponent(session.recipient);
    self.call("GET", "/longPolling/" + session.requestId + "/status" + query).then(function (answer) {
      session.statusPolling = false;
      if (!self.alive(session)) return;
      if (answer.success) return self.succeed(session);
      self.pollStatus(session);
    }).catch(function (error) {
      session.statusPolling = false;
      if (!self.alive(session)) return;
      if (error.type === "LongPollingTimeoutException") return self.pollStatus(session);
      // Redrawing a codeless channel starts status polling again.
      self.handleSessionError(session, error, null);
    });
  };

  Widget.prototype.succeed = function (session) {
    if (session.done) return;
    session.done = true;
    this.flow += 1;  // stop the loops of this session
    clearInterval(this.cooldownTimer);
    this.body.textContent = "";
    this.fail("");
    this.say(this.t("success"));
    this.container.classList.add("sdkauth-done");
    this.container.dispatchEvent(new CustomEvent("sdkauth:success", {
      bubbles: true,
      detail: { requestId: session.requestId, recipient: session.recipient },
    }));
  };

  Widget.prototype.showError = function (error) {
    var self = this;
    var message = (error && error.message) || self.t("failed");
    if (error && error.type === "ValidateError") {
      self.fail(message);
      return;  // the form stays; the user corrects the input
    }
    self.flow += 1;
    self.session = null;
    clearInterval(self.cooldownTimer);
    self.fail(message);
    self.say("");
    var again = element("button", { type: "button", class: "sdkauth-restart", text: self.t("restart") });
    again.addEventListener("click", function () { self.start(); });
    self.body.textContent = "";
    self.body.appendChild(again);
    again.focus();
    self.container.dispatchEvent(new CustomEvent("sdkauth:error", {
      bubbles: true, detail: { type: error && error.type, message: message },
    }));
  };

  function initAll() {
    var nodes = document.querySelectorAll(".sdkauth-widget:not([data-sdkauth-ready])");
    Array.prototype.forEach.call(nodes, function (node) {
      node.setAttribute("data-sdkauth-ready", "");
      node.sdkauth = new Widget(node);
    });
  }

  window.SdkAuthWidget = { initAll: initAll, texts: TEXTS };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initAll);
  else initAll();
})();
