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
 * {requestId, recipient, e164}: the number as typed and, from send's
 * Sdkauth-Recipient header, in E.164 form (null when the header cannot be read).
 * The host page posts them to its own backend, which must call
 * sdkauth.check_status_and_complete before trusting them. The same moment also
 * fires SIGMA's widget event "code:check", detail[0] = {requestId, recipient,
 * status: "confirmed"}.
 *
 * A page written for SIGMA's widget works too: window.OTP_WIDGETS = [{widgetId,
 * locale, autofocus, containerId}] and a <div id="otp-widget"> (or containerId)
 * become widgets. Our routes want a widget token, so the script tag says where to
 * get one (data-token-url, or data-token) and, if the routes are not at the site
 * root, where they are (data-api):
 *   <script src="/sdkauth-static/sdkauth-widget.js" data-token-url="/widgetToken">
 *
 * Every text shown is the widget's own, in its language (errors by their type);
 * every request says that language in Accept-Language.
 */
(function () {
  "use strict";
  if (window.SdkAuthWidget) {
    window.SdkAuthWidget.initAll();
    return;
  }

  var RECIPIENT_HEADER = "Sdkauth-Recipient";
  // The script tag, read while it runs: its data attributes configure the widgets
  // of a page written for SIGMA's widget.
  var SCRIPT = document.currentScript;

  var TEXTS = {
    ru: {
      phoneLabel: "Номер телефона",
      phonePlaceholder: "+7 999 123-45-67",
      sendButton: "Получить код",
      sending: "Отправляем…",
      numberLine: "Номер: {number}",
      changeNumber: "Изменить номер",
      codeLabel: "Код из сообщения",
      codeSentBy: "Мы отправили код: {label}.",
      checkButton: "Подтвердить",
      attemptsLeft: "Осталось попыток: {count}.",
      resendButton: "Отправить код ещё раз",
      resendIn: "Повторная отправка через {seconds} с",
      retryIn: "Повторить через {seconds} с",
      resent: "Код отправлен ещё раз.",
      channelChanged: "Способ подтверждения изменился.",
      codelessWait: "Подтвердите вход: {label}.",
      matchNumber: "Выберите на телефоне число {number}.",
      success: "Номер подтверждён.",
      restart: "Начать заново",
      captchaRequired: "Подтвердите, что вы не робот.",
      invalidPhone: "Проверьте номер: введите его в международном формате, например +7 999 123-45-67.",
      wrongNumberPicked: "На телефоне выбрано другое число, поэтому вход остановлен. Начните заново.",
      networkError: "Не удалось связаться с сервисом входа. Проверьте подключение и попробуйте ещё раз.",
      failed: "Не удалось выполнить запрос. Попробуйте ещё раз.",
      widgetBlocked: "Вход временно недоступен.",
      // The contract's error types (errors.json), by type.
      ResendChannelException: "Срок действия кода истёк. Начните заново.",
      AttemptsExpiredException: "Количество попыток ввода кода исчерпано, запустите попытку авторизации заново",
      NoAvailableChannelsException: "Не удалось отправить сообщение на этот номер. Начните заново.",
      SessionClosedException: "Эта попытка входа завершена. Начните заново.",
      ChannelChangedException: "Способ подтверждения изменился. Начните заново.",
      InvalidCodeException: "Неверный код.",
      IsCodelessChannelException: "Этот вход подтверждается на телефоне, без кода. Начните заново.",
      ForbiddenException: "Вход здесь не разрешён. Обновите страницу и попробуйте ещё раз.",
      WidgetIsBlockedException: "Вход заблокирован. Обратитесь в поддержку.",
      WidgetNotFoundException: "Такой формы входа нет.",
      SessionNotFoundException: "Попытка входа не найдена. Начните заново.",
      LongPollingTimeoutException: "Сервер долго не отвечал. Попробуйте ещё раз.",
      PhoneNumberMismatchException: "Номер не совпадает с номером этой попытки входа. Начните заново.",
      RestartCooldownActiveException: "Отправить код ещё раз пока нельзя: подождите.",
      SessionAlreadyConfirmedException: "Этот вход уже подтверждён.",
      RateLimitException: "Слишком много попыток. Подождите и попробуйте ещё раз.",
      CaptchaNotConfirmedException: "Проверка «я не робот» не пройдена. Начните заново.",
      ValidateError: "Проверьте введённые данные.",
      NoConnectionException: "Сервис входа сейчас недоступен. Попробуйте позже.",
      InternalServerErrorException: "На сервере произошла ошибка. Попробуйте позже.",
      BadRequestException: "Сервер не понял запрос. Начните заново.",
      RequestNotFoundException: "Запрос не найден. Начните заново.",
      Unauthorized: "Страница входа устарела. Обновите её и попробуйте ещё раз.",
      SessionTimeoutException: "Время на вход истекло. Начните заново.",
    },
    en: {
      phoneLabel: "Phone number",
      phonePlaceholder: "+1 201 555 0123",
      sendButton: "Get a code",
      sending: "Sending…",
      numberLine: "Number: {number}",
      changeNumber: "Change number",
      codeLabel: "Code from the message",
      codeSentBy: "We sent you a code: {label}.",
      checkButton: "Confirm",
      attemptsLeft: "Attempts left: {count}.",
      resendButton: "Send the code again",
      resendIn: "You can ask again in {seconds} s",
      retryIn: "Try again in {seconds} s",
      resent: "The code was sent again.",
      channelChanged: "The way to confirm has changed.",
      codelessWait: "Confirm the sign-in: {label}.",
      matchNumber: "Pick the number {number} on your phone.",
      success: "Your number is confirmed.",
      restart: "Start again",
      captchaRequired: "Please confirm you are not a robot.",
      invalidPhone: "Check the number: enter it in international format, for example +1 201 555 0123.",
      wrongNumberPicked: "A different number was picked on the phone, so this sign-in was stopped. Start again.",
      networkError: "Could not reach the sign-in service. Check your connection and try again.",
      failed: "The request failed. Please try again.",
      widgetBlocked: "Sign-in is not available right now.",
      ResendChannelException: "The code has expired. Start again.",
      AttemptsExpiredException: "No attempts left to enter the code. Start again.",
      NoAvailableChannelsException: "We could not send a message to this number. Start again.",
      SessionClosedException: "This sign-in has ended. Start again.",
      ChannelChangedException: "The way to confirm has changed. Start again.",
      InvalidCodeException: "Wrong code.",
      IsCodelessChannelException: "This sign-in is confirmed on the phone, not with a code. Start again.",
      ForbiddenException: "Sign-in is not allowed here. Reload the page and try again.",
      WidgetIsBlockedException: "Sign-in is blocked. Please contact support.",
      WidgetNotFoundException: "This sign-in form does not exist.",
      SessionNotFoundException: "This sign-in was not found. Start again.",
      LongPollingTimeoutException: "The server took too long to answer. Please try again.",
      PhoneNumberMismatchException: "The number does not match this sign-in. Start again.",
      RestartCooldownActiveException: "It is too early to send the code again. Please wait.",
      SessionAlreadyConfirmedException: "This sign-in is already confirmed.",
      RateLimitException: "Too many attempts. Please wait and try again.",
      CaptchaNotConfirmedException: "The check that you are not a robot did not pass. Start again.",
      ValidateError: "Please check what you entered.",
      NoConnectionException: "The sign-in service is not available right now. Please try later.",
      InternalServerErrorException: "Something went wrong on the server. Please try later.",
      BadRequestException: "The server did not understand the request. Start again.",
      RequestNotFoundException: "This request was not found. Start again.",
      Unauthorized: "The sign-in page has expired. Reload it and try again.",
      SessionTimeoutException: "The time for this sign-in is up. Start again.",
    },
  };

  // Other names of the same errors (an SDK-level alias and legacy spellings).
  var SAME_TEXT = {
    CommonForbiddenException: "ForbiddenException",
    FormNotFoundException: "WidgetNotFoundException",
    FormIsBlockedException: "WidgetIsBlockedException",
    AttempsExpiredException: "AttemptsExpiredException",
  };
  Object.keys(TEXTS).forEach(function (lang) {
    Object.keys(SAME_TEXT).forEach(function (type) {
      TEXTS[lang][type] = TEXTS[lang][SAME_TEXT[type]];
    });
  });

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

  // Seconds from a Retry-After header (seconds, or an HTTP date); null without one.
  function retryAfter(response) {
    var value = response.headers.get("Retry-After");
    if (!value) return null;
    var seconds = /^\d+$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
    return isNaN(seconds) ? null : Math.max(0, Math.ceil(seconds));
  }

  function ApiError(body, response) {
    this.type = (body && body.type) || "InternalServerErrorException";
    this.status = response ? response.status : 0;
    this.retryAfter = response ? retryAfter(response) : null;
  }

  // The browser refused the request (CORS, no network): no response to read.
  function NetworkError(url, failure) {
    this.type = "NetworkError";
    this.network = true;
    this.aborted = !!failure && failure.name === "AbortError";
    if (!this.aborted && window.console) {
      window.console.error(
        "flask-sdkauth widget: the browser could not reach " + url + " (" + failure + "). " +
        "If the sign-in routes are on another origin than this page, that server must " +
        "answer CORS for this page's origin (the Authorization, Content-Type and " +
        "Accept-Language request headers; expose Sdkauth-Recipient and Retry-After): " +
        "see the CORS section of docs/deployment.rst."
      );
    }
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
    this.lang = TEXTS[lang] ? lang : "ru";
    this.texts = Object.assign({}, TEXTS[this.lang],
      JSON.parse(container.getAttribute("data-texts") || "{}"));
    this.flow = 0;  // bumps whenever an attempt ends, so that its loops stop
    this.timers = [];
    this.build();
    this.start("");
    if (container.hasAttribute("data-autofocus")) {
      var input = container.querySelector("input");
      if (input) input.focus();
    }
  }

  Widget.prototype.t = function (key, values) {
    return format(this.texts[key] || "", values || {});
  };

  Widget.prototype.build = function () {
    var id = "sdkauth-" + Math.random().toString(36).slice(2);
    this.ids = { phone: id + "-phone", code: id + "-code", error: id + "-error" };
    this.container.setAttribute("lang", this.lang);
    this.title = element("h2", { class: "sdkauth-title" });
    this.body = element("div", { class: "sdkauth-body" });
    this.status = element("p", { class: "sdkauth-status", "aria-live": "polite" });
    this.error = element("p", { id: this.ids.error, class: "sdkauth-error", role: "alert" });
    this.container.textContent = "";
    this.container.appendChild(this.title);
    this.container.appendChild(this.body);
    this.container.appendChild(this.status);
    this.container.appendChild(this.error);
  };

  Widget.prototype.say = function (text) { this.status.textContent = text || ""; };

  // Show an error (or clear it with ""). `field` is the control it concerns: it gets
  // aria-describedby pointing at the error, and aria-invalid when `invalid`.
  // An error always replaces the status line, so no "Sending…" stays beside it.
  Widget.prototype.fail = function (text, field, invalid) {
    if (this.marked) {
      this.marked.removeAttribute("aria-invalid");
      this.marked.removeAttribute("aria-describedby");
      this.marked = null;
    }
    this.error.textContent = text || "";
    if (!text) return;
    this.say("");
    if (field) {
      field.setAttribute("aria-describedby", this.ids.error);
      if (invalid) field.setAttribute("aria-invalid", "true");
      this.marked = field;
    }
  };

  // The user edits the input an error marked invalid: it is no longer known to be.
  Widget.prototype.watchEdits = function (input) {
    input.addEventListener("input", function () { input.removeAttribute("aria-invalid"); });
  };

  // A new step: new content, no old status or error, no running countdowns.
  Widget.prototype.step = function (children) {
    var self = this;
    self.clearTimers();
    self.fail("");
    self.say("");
    self.body.textContent = "";
    (children || []).forEach(function (child) { if (child) self.body.appendChild(child); });
  };

  Widget.prototype.clearTimers = function () {
    this.timers.forEach(function (timer) { clearInterval(timer); });
    this.timers = [];
  };

  // End the current attempt: its loops stop and its requests in flight are aborted.
  Widget.prototype.stop = function () {
    this.flow += 1;
    this.session = null;
    this.clearTimers();
    if (this.aborter) this.aborter.abort();
    this.aborter = window.AbortController ? new AbortController() : null;
  };

  Widget.prototype.errorText = function (error, session) {
    if (error && error.network) return this.t("networkError");
    var type = error && error.type;
    var channel = session && session.channel;
    if (type === "AttemptsExpiredException" && channel && channel.codeType === "codeless" &&
        channel.payload && channel.payload.matchNumber) {
      // With number matching a wrong pick on the phone ends the session at once.
      return this.t("wrongNumberPicked");
    }
    return this.texts[type] ? this.t(type) : this.t("failed");
  };

  // -- HTTP --------------------------------------------------------------------

  Widget.prototype.http = function (url, options) {
    var signal = this.aborter ? this.aborter.signal : undefined;
    options.headers["Accept-Language"] = this.lang;
    options.signal = signal;
    return fetch(url, options).catch(function (failure) { throw new NetworkError(url, failure); });
  };

  Widget.prototype.getToken = function () {
    var self = this;
    if (self.token || !self.tokenUrl) return Promise.resolve(self.token);
    return self.http(self.tokenUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) { self.token = body.token; return self.token; });
  };

  // Resolves to {data, response}; rejects with an ApiError or a NetworkError.
  Widget.prototype.request = function (method, path, body) {
    var self = this;
    return self.getToken().then(function (token) {
      var headers = { Accept: "application/json" };
      if (token) headers.Authorization = "Bearer " + token;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      return self.http(self.api + path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return { data: data, response: response };
        throw new ApiError(data, response);
      });
    });
  };

  Widget.prototype.call = function (method, path, body) {
    return this.request(method, path, body).then(function (answer) { return answer.data; });
  };

  // -- steps ---------------------------------------------------------------------

  Widget.prototype.start = function (prefill) {
    var self = this;
    self.stop();
    self.step([]);
    var flow = self.flow;
    self.call("GET", "/widget/" + self.widgetId).then(function (widget) {
      if (self.flow !== flow) return;
      self.title.textContent = widget.name;
      if (widget.isBlocked || !widget.isActive) {
        self.step([]);
        self.fail(self.t("widgetBlocked"));
        return;
      }
      self.showPhoneForm(widget, prefill);
    }).catch(function (error) { if (self.flow === flow) self.showError(error); });
  };

  Widget.prototype.showPhoneForm = function (widget, prefill) {
    var self = this;
    var input = element("input", {
      id: self.ids.phone, type: "tel", name: "recipient", autocomplete: "tel",
      required: "required", placeholder: self.t("phonePlaceholder"),
    });
    input.value = prefill || "";
    self.watchEdits(input);
    var captchaBox = element("div", { class: "sdkauth-captcha" });
    var button = element("button", { type: "submit", text: self.t("sendButton") });
    var form = element("form", { class: "sdkauth-phone", novalidate: "novalidate" }, [
      element("label", { for: self.ids.phone, text: self.t("phoneLabel") }),
      input, captchaBox, button,
    ]);
    self.captchaToken = null;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.disabled) return;  // a send is on its way, or the limit's wait runs
      button.disabled = true;
      self.send(input.value.trim(), input, button);
    });
    self.step([form]);
    if (widget.captchaIsRequired && widget.captchaProvider) {
      self.say(self.t("captchaRequired"));
      self.renderCaptcha(widget.captchaProvider, captchaBox);
    }
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

  Widget.prototype.send = function (recipient, input, button) {
    var self = this;
    var flow = self.flow;
    self.fail("");
    self.say(self.t("sending"));
    return self.freshCaptchaToken().then(function (captchaToken) {
      var body = { widgetId: self.widgetId, recipient: recipient };
      if (captchaToken) body.captchaToken = captchaToken;
      return self.request("POST", "/", body);
    }).then(function (answer) {
      if (self.flow !== flow) return;
      self.session = {
        requestId: answer.data.requestId,
        recipient: recipient,
        e164: answer.response.headers.get(RECIPIENT_HEADER) || null,
        flow: self.flow,
      };
      self.pollChannel(self.session);
    }).catch(function (error) {
      if (self.flow !== flow || error.aborted) return;
      button.disabled = false;
      if (error.type === "ValidateError") {
        // The number is what the user can correct: the form stays, the input says why.
        self.fail(self.t("invalidPhone"), input, true);
        input.focus();
      } else if (error.type === "RateLimitException") {
        self.refuse(error, button, "sendButton", input);
      } else if (error.network) {
        self.fail(self.t("networkError"), button);  // the same button tries again
        button.focus();
      } else {
        self.showError(error, { recipient: recipient });  // "start again" fills it in
      }
    });
  };

  // A 429: the refused button waits out Retry-After, counting down on its face,
  // while the error says to wait; the focus goes to `focus` (the button is disabled).
  Widget.prototype.refuse = function (error, button, labelKey, focus, waitKey) {
    var self = this;
    var text = self.t("RateLimitException");
    self.fail(text, focus || null);
    if (focus) focus.focus();
    if (!error.retryAfter) return;
    self.countdown(button, error.retryAfter, labelKey, waitKey || "retryIn", function () {
      if (self.error.textContent === text) self.fail("");
    });
  };

  // Disable `button` for `seconds`, showing the seconds left (text `waitKey`), then
  // give it back its label (`labelKey`) and call `done`.
  Widget.prototype.countdown = function (button, seconds, labelKey, waitKey, done) {
    var self = this;
    var until = Date.now() + seconds * 1000;
    var timer = setInterval(tick, 1000);
    self.timers.push(timer);
    button.sdkauthWaiting = true;
    function tick() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        button.disabled = true;
        button.textContent = self.t(waitKey, { seconds: left });
        return;
      }
      clearInterval(timer);
      button.sdkauthWaiting = false;
      button.disabled = false;
      button.textContent = self.t(labelKey);
      if (done) done();
    }
    tick();
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
    if (!self.alive(session)) return;
    if (error.type === "ResendChannelException") {
      return self.restartChannel(session)
        .then(function () { if (loop) loop(session); })
        .catch(function (again) { if (self.alive(session)) self.showError(again, session); });
    }
    if (error.type === "ChannelChangedException" || error.type === "IsCodelessChannelException") {
      return self.refetchChannel(session).then(function () {
        if (self.alive(session)) self.say(self.t("channelChanged"));
      }, function (again) {
        return self.handleSessionError(session, again, loop);
      });
    }
    self.showError(error, session);
  };

  Widget.prototype.showChannel = function (session, channel) {
    var key = [channel.type, channel.status, channel.codeType,
      JSON.stringify(channel.payload || {})].join("|");
    session.channel = channel;
    this.updateAttempts(channel);
    if (session.drawn === key) return;
    session.drawn = key;
    if (channel.status === "wait") {
      this.step([this.recipientBox(session)]);
      this.say(this.t("sending"));
    } else if (channel.status === "sent" && channel.codeType === "codeless") {
      this.showCodeless(session, channel);
    } else if (channel.status === "sent") {
      this.showCodeForm(session, channel);
    }
  };

  // The number the session runs for, and the way back to the phone form.
  Widget.prototype.recipientBox = function (session) {
    var self = this;
    var change = element("button", { type: "button", class: "sdkauth-change", text: self.t("changeNumber") });
    change.addEventListener("click", function () { self.start(session.recipient); });
    return element("div", { class: "sdkauth-recipient" }, [
      element("p", { text: self.t("numberLine", { number: session.e164 || session.recipient }) }),
      change,
    ]);
  };

  Widget.prototype.showCodeForm = function (session, channel) {
    var self = this;
    var length = (channel.settings && channel.settings.code && channel.settings.code.length) || 6;
    var input = element("input", {
      id: self.ids.code, name: "code", inputmode: "numeric", autocomplete: "one-time-code",
      pattern: "[0-9]*", maxlength: String(length), size: String(length), required: "required",
    });
    self.watchEdits(input);
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
      if (check.disabled) return;  // a check is on its way, or the limit's wait runs
      check.disabled = true;
      self.checkCode(session, input.value.trim(), input, check).then(function () {
        if (!check.sdkauthWaiting) check.disabled = false;
      });
    });
    resend.addEventListener("click", function () { self.resend(session, resend, input); });
    self.step([self.recipientBox(session), form]);
    self.updateAttempts(channel);
    var cooldown = (channel.settings && channel.settings.restartCooldown) || 0;
    self.countdown(resend, cooldown, "resendButton", "resendIn");
    input.focus();
  };

  Widget.prototype.updateAttempts = function (channel) {
    if (this.attempts && channel.codeType === "code") {
      this.attempts.textContent = this.t("attemptsLeft", { count: channel.remainingCodeAttempts });
    }
  };

  Widget.prototype.checkCode = function (session, code, input, check) {
    var self = this;
    self.fail("");
    return self.call("POST", "/" + session.requestId + "/checkCode", { code: code })
      .then(function () { if (self.alive(session)) self.succeed(session); })
      .catch(function (error) {
        if (!self.alive(session)) return;
        if (error.type === "InvalidCodeException" || error.type === "ValidateError") {
          // The user can correct the code: keep the form, mark the input and focus it.
          self.fail(self.t(error.type), input, true);
          input.focus();
          input.select();
          return self.refetchChannel(session).catch(function () {});
        }
        if (error.type === "RateLimitException") return self.refuse(error, check, "checkButton", input);
        if (error.network) {
          self.fail(self.t("networkError"), check);
          return check.focus();
        }
        return self.handleSessionError(session, error, null);
      });
  };

  Widget.prototype.resend = function (session, button, input) {
    var self = this;
    self.fail("");
    return self.call("POST", "/" + session.requestId + "/resend").then(function () {
      session.drawn = null;
      return self.refetchChannel(session).then(function () {
        if (self.alive(session)) self.say(self.t("resent"));
      });
    }).catch(function (error) {
      if (!self.alive(session)) return;
      if (error.type === "RestartCooldownActiveException") return self.fail(self.t(error.type), button);
      if (error.type === "RateLimitException") return self.refuse(error, button, "resendButton", input, "resendIn");
      if (error.network) return self.fail(self.t("networkError"), button);
      self.handleSessionError(session, error, null);
    });
  };

  Widget.prototype.showCodeless = function (session, channel) {
    var self = this;
    var children = [element("p", { text: self.t("codelessWait", { label: channel.label }) })];
    var number = channel.payload && channel.payload.matchNumber;
    if (number) {
      children.push(element("p", { class: "sdkauth-match", text: self.t("matchNumber", { number: number }) }));
    }
    self.step([self.recipientBox(session), element("div", { class: "sdkauth-codeless" }, children)]);
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
    this.stop();
    this.step([]);
    this.say(this.t("success"));
    this.container.classList.add("sdkauth-done");
    this.container.dispatchEvent(new CustomEvent("sdkauth:success", {
      bubbles: true,
      detail: { requestId: session.requestId, recipient: session.recipient, e164: session.e164 },
    }));
    // SIGMA's widget event, for pages written for it.
    this.container.dispatchEvent(new CustomEvent("code:check", {
      bubbles: true,
      detail: [{ requestId: session.requestId, recipient: session.recipient, status: "confirmed" }],
    }));
  };

  // An error that ends the attempt: its text and a "start again" button.
  Widget.prototype.showError = function (error, session) {
    var self = this;
    if (error && (error.aborted || error.name === "AbortError")) return;
    var message = self.errorText(error, session);
    self.stop();
    var again = element("button", { type: "button", class: "sdkauth-restart", text: self.t("restart") });
    again.addEventListener("click", function () { self.start(session ? session.recipient : ""); });
    self.step([again]);
    // The focus goes to the button that is the way on, described by the error: a
    // screen reader then reads "Start again, button" and the error together, even
    // where it drops the role="alert" announcement because the focus moved at the
    // same moment; focusing the error paragraph instead would leave the user one
    // Tab away from the only thing left to do.
    self.fail(message, again);
    again.focus();
    self.container.dispatchEvent(new CustomEvent("sdkauth:error", {
      bubbles: true, detail: { type: error && error.type, message: message },
    }));
  };

  // window.OTP_WIDGETS = [{widgetId, locale, autofocus, containerId}]: SIGMA's way
  // of placing widgets, turned into our data attributes.
  function adoptSigmaWidgets() {
    var entries = window.OTP_WIDGETS;
    if (!Array.isArray(entries)) return;
    entries.forEach(function (entry) {
      if (!entry || !entry.widgetId) return;
      var node = document.getElementById(entry.containerId || "otp-widget");
      if (!node || node.classList.contains("sdkauth-widget")) return;
      node.classList.add("sdkauth-widget");
      node.setAttribute("data-widget-id", entry.widgetId);
      if (entry.locale) node.setAttribute("data-lang", entry.locale);
      if (entry.autofocus) node.setAttribute("data-autofocus", "");
      ["data-api", "data-token", "data-token-url", "data-captcha-site-key"].forEach(function (name) {
        var value = SCRIPT && SCRIPT.getAttribute(name);
        if (value !== null && value !== undefined && !node.hasAttribute(name)) node.setAttribute(name, value);
      });
    });
  }

  function initAll() {
    adoptSigmaWidgets();
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
