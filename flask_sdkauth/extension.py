"""The :class:`SdkAuth` extension object: setup, hooks and the Python API."""

from __future__ import annotations

import functools
import logging
import uuid
import weakref
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import flask_smorest  # type: ignore[import-untyped]  # no type hints of its own
from flask import Flask, current_app, url_for
from flask_sqlalchemy import SQLAlchemy

from .api_keys import ApiKeys
from .auth import encode_token
from .authenticator import Authenticator, NoLocalEngine
from .blueprint import SECURITY_SCHEME
from .cli import sdkauth_cli
from .config import DEFAULT_CONFIG, Settings
from .delivery import DeliveryStatus
from .dispatchers import Dispatcher, InlineDispatcher
from .engine import Clock, Engine, utc_now
from .errors import SdkAuthError, ValidateError, error_response
from .guards import Guards
from .hooks import (
    ChannelSender,
    ClientIpLoader,
    Hooks,
    RecipientBlocklistLoader,
    UpstreamTokenLoader,
    WidgetLoader,
)
from .message import Message
from .notifier import create_notifier
from .observers import connect_observers
from .observers.audit import number_hash
from .shadowing import ShadowedRouteError, find_shadowing
from .store import SessionStore, WidgetStore
from .swagger_ui import SWAGGER_UI_ASSETS_PATH, register_swagger_ui_assets, swagger_ui_bundle_folder
from .tables import define_tables
from .templating import WidgetTemplates
from .views import blp
from .widgets import CHANNEL_TYPES, Channel, Widget

logger = logging.getLogger("flask_sdkauth")

__all__ = ["SdkAuth"]

WidgetLoaderT = TypeVar("WidgetLoaderT", bound=WidgetLoader)
ChannelSenderT = TypeVar("ChannelSenderT", bound=ChannelSender)
BlocklistLoaderT = TypeVar("BlocklistLoaderT", bound=RecipientBlocklistLoader)
ClientIpLoaderT = TypeVar("ClientIpLoaderT", bound=ClientIpLoader)
UpstreamTokenLoaderT = TypeVar("UpstreamTokenLoaderT", bound=UpstreamTokenLoader)


class SdkAuth:
    """Phone authentication for a Flask app.

    :param app: an app to initialise at once; or call :meth:`init_app` later.
    :param db: the host's Flask-SQLAlchemy object; the extension's tables are added
        to its metadata, so ``db.create_all()`` creates them.
    :param api: the host's flask-smorest ``Api``; the routes then appear in the
        host's OpenAPI document. Without it the extension documents them in an
        ``Api`` of its own (config prefix ``SDKAUTH_``).
    :param dispatcher: runs channel launches; when given, ``SDKAUTH_DISPATCHER`` is
        not read. By default each app gets the dispatcher its config names.
    :param clock: returns the current aware UTC time; tests pass their own.
    :param metrics_registry: the ``prometheus_client`` registry the metrics are
        registered on (default: the library's global ``REGISTRY``).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy,
        api: flask_smorest.Api | None = None,
        dispatcher: Dispatcher | None = None,
        clock: Clock = utc_now,
        metrics_registry: Any | None = None,
    ) -> None:
        self.db = db
        self.api = api
        self.metrics_registry = metrics_registry
        self._dispatcher = dispatcher
        self.clock = clock
        self.hooks = Hooks()
        self.tables = define_tables(db.metadata)
        #: The backend keys (``flask sdkauth key …``), see :doc:`upstream`.
        self.api_keys = ApiKeys(db, self.tables.api_key)
        self._authenticators: weakref.WeakKeyDictionary[Flask, Authenticator] = (
            weakref.WeakKeyDictionary()
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the routes, error handler, CLI and per-app engine on ``app``.

        Call it after ``db.init_app(app)``, ``jwt.init_app(app)`` and, when given,
        ``api.init_app(app)``.
        """
        if "sdkauth" in app.extensions:
            raise RuntimeError(
                "SdkAuth is already registered on this app. Call init_app once per "
                "app, or create a separate SdkAuth for another configuration."
            )
        for name, setup in (("sqlalchemy", "db.init_app(app)"),
                            ("flask-jwt-extended", "jwt.init_app(app)")):
            if name not in app.extensions:
                raise RuntimeError(f"Call {setup} before sdkauth.init_app(app).")
        for key, value in DEFAULT_CONFIG.items():
            app.config.setdefault(key, value)
        settings = Settings.from_config(app.config)
        guards = Guards.from_config(app.config)
        if settings.upstream_url is not None:
            self._authenticators[app] = self._build_upstream_authenticator(settings, guards)
        else:
            self._authenticators[app] = self._build_engine(settings, guards)
        connect_observers(app, settings, self.metrics_registry)
        app.extensions["sdkauth"] = self
        app.register_error_handler(SdkAuthError, error_response)
        app.cli.add_command(sdkauth_cli)
        app.jinja_env.globals.setdefault("sdkauth", WidgetTemplates())
        self._register_routes(app, settings.url_prefix)

    def _build_engine(self, settings: Settings, guards: Guards) -> Engine:
        notifier = create_notifier(settings.notifier_url)
        return Engine(
            settings=settings,
            sessions=SessionStore(self.db, self.tables.session, on_change=notifier.publish),
            widgets=WidgetStore(
                self.db,
                self.tables.widget,
                cache_seconds=settings.widget_cache_seconds,
                clock=self.clock,
            ),
            hooks=self.hooks,
            dispatcher=self._dispatcher or _configured_dispatcher(settings.dispatcher),
            notifier=notifier,
            guards=guards,
            clock=self.clock,
        )

    def _build_upstream_authenticator(
        self, settings: Settings, guards: Guards
    ) -> Authenticator:
        from .upstream import OtpHandlerClient, ProxiedSessions, UpstreamAuthenticator

        assert settings.upstream_url is not None
        return UpstreamAuthenticator(
            settings=settings,
            client=OtpHandlerClient(
                settings.upstream_url,
                functools.partial(_upstream_token, self.hooks, settings),
                timeout=settings.upstream_timeout,
            ),
            sessions=ProxiedSessions(self.db, self.tables.upstream_session),
            guards=guards,
            clock=self.clock,
        )

    def _register_routes(self, app: Flask, url_prefix: str) -> None:
        api = self.api
        if api is None:
            _serve_swagger_ui_offline(app)
            api = _OwnApi(app, config_prefix="SDKAUTH_")
        elif api.spec is None:
            raise RuntimeError("Call api.init_app(app) before sdkauth.init_app(app).")
        schemes = api.spec.components.security_schemes
        if SECURITY_SCHEME not in schemes:
            api.spec.components.security_scheme(
                SECURITY_SCHEME, {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            )
        api.register_blueprint(blp, url_prefix=url_prefix or None)
        # Runs before Flask raises a routing error: our paths' 404/405 in our shape.
        app.before_request(blp.refuse_unrouted)
        # Of two rules that match alike, werkzeug takes the one registered first:
        # only the host's routes registered before ours can take our requests.
        _refuse_shadowing(app)

    # -- per-app state ---------------------------------------------------------

    @property
    def authenticator(self) -> Authenticator:
        """What runs the current app's authentications: its own
        :class:`~flask_sdkauth.engine.Engine`, or in proxy mode
        (``SDKAUTH_UPSTREAM_URL``) the
        :class:`~flask_sdkauth.upstream.UpstreamAuthenticator`."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._authenticators[app]
        except KeyError:
            raise RuntimeError(
                "SdkAuth is not initialised on the current app; call init_app(app)."
            ) from None

    @property
    def engine(self) -> Engine:
        """The engine of the current app (not in proxy mode, which has none)."""
        authenticator = self.authenticator
        if not isinstance(authenticator, Engine):
            raise NoLocalEngine(
                "This app proxies SIGMA's service (SDKAUTH_UPSTREAM_URL): sessions, "
                "widgets and senders are the service's, and there is no local engine."
            )
        return authenticator

    @property
    def settings(self) -> Settings:
        """The current app's settings, as read by :meth:`init_app`."""
        return self.authenticator.settings

    # -- hooks -----------------------------------------------------------------

    def widget_loader(self, callback: WidgetLoaderT) -> WidgetLoaderT:
        """Decorator: load widgets from the host instead of the built-in table.

        The callback is ``fn(widget_id: uuid.UUID) -> Widget | None``; ``None`` means
        the widget does not exist (404 ``WidgetNotFoundException``).
        """
        self.hooks.widget_loader = callback
        return callback

    def channel_sender(
        self, channel_type: str, *, bounded: bool = False
    ) -> Callable[[ChannelSenderT], ChannelSenderT]:
        """Decorator: deliver messages of ``channel_type`` (``"sms"``, ``"voice"``…).

        The callback is ``fn(message: Message) -> None``. Raising any exception means
        the channel failed: the engine records why and tries the next channel.

        :param bounded: see :meth:`add_channel_sender`.
        """

        def decorator(callback: ChannelSenderT) -> ChannelSenderT:
            self.add_channel_sender(channel_type, callback, bounded=bounded)
            return callback

        return decorator

    def add_channel_sender(
        self, channel_type: str, callback: ChannelSender, *, bounded: bool = False
    ) -> None:
        """Register ``callback`` as the sender of ``channel_type`` (the imperative
        twin of :meth:`channel_sender`).

        :param bounded: the callback returns well within ``SDKAUTH_SENDER_TIMEOUT``
            by itself (it only puts the message on a queue of the host's, or every
            wait in it has a shorter time-out of its own). It is then called in the
            launch's own thread, which saves handing each call to a sender thread
            (about half a millisecond of CPU per send under gunicorn), and the
            timeout is not enforced: a bounded sender that hangs holds its request
            or worker. By default (``False``) every call runs in a sender thread
            that the launch stops waiting for after the timeout.
        """
        if channel_type not in CHANNEL_TYPES:
            raise ValueError(
                f"unknown channel type {channel_type!r}; use one of {sorted(CHANNEL_TYPES)}"
            )
        self.hooks.channel_senders[channel_type] = callback
        if bounded:
            self.hooks.bounded_senders.add(channel_type)
        else:
            self.hooks.bounded_senders.discard(channel_type)

    def recipient_in_blocklist_loader(self, callback: BlocklistLoaderT) -> BlocklistLoaderT:
        """Decorator: refuse some phone numbers.

        The callback is ``fn(recipient: str, widget: Widget) -> bool`` with the number
        in E.164; ``True`` makes ``send`` answer 403 ``WidgetIsBlockedException``.
        """
        self.hooks.recipient_in_blocklist_loader = callback
        return callback

    def client_ip_loader(self, callback: ClientIpLoaderT) -> ClientIpLoaderT:
        """Decorator: tell the client's IP address (default ``request.remote_addr``).

        The callback is ``fn() -> str | None`` and runs inside the request.
        """
        self.hooks.client_ip_loader = callback
        return callback

    def upstream_token_loader(self, callback: UpstreamTokenLoaderT) -> UpstreamTokenLoaderT:
        """Decorator: the bearer token for SIGMA's service in proxy mode, read before
        every call (for rotation, like ``setApiToken`` of SIGMA's Node SDK); it
        takes precedence over ``SDKAUTH_UPSTREAM_TOKEN``.

        The callback is ``fn() -> str``.
        """
        self.hooks.upstream_token_loader = callback
        return callback

    # -- Python API ------------------------------------------------------------

    def create_token(
        self,
        widget_ids: Iterable[uuid.UUID | str],
        *,
        expires_in: int | timedelta | None = None,
    ) -> str:
        """Issue a bearer token that lets a widget call the API for ``widget_ids``.

        :param expires_in: seconds or a ``timedelta``; default
            ``SDKAUTH_TOKEN_EXPIRES``.
        """
        settings = self.settings
        if expires_in is None:
            expires_in = settings.token_expires
        if not isinstance(expires_in, timedelta):
            expires_in = timedelta(seconds=expires_in)
        return encode_token(widget_ids, expires_in=expires_in, audience=settings.jwt_audience)

    def create_widget(
        self,
        name: str,
        channels: Iterable[Channel],
        *,
        is_active: bool = True,
        is_blocked: bool = False,
        allowed_regions: Iterable[str] = (),
        widget_id: uuid.UUID | None = None,
    ) -> Widget:
        """Store a widget in the built-in table (what ``flask sdkauth widget create``
        does) and return it."""
        engine = self.engine
        return engine.widgets.create(
            name=name,
            channels=tuple(channels),
            is_active=is_active,
            is_blocked=is_blocked,
            allowed_regions=tuple(allowed_regions),
            created_at=engine.clock(),
            widget_id=widget_id,
        )

    def send(
        self,
        widget_id: uuid.UUID | str,
        recipient: str,
        *,
        client_ip: str | None = None,
        captcha_token: str | None = None,
        locale: str | None = None,
    ) -> uuid.UUID:
        """Start a session from Python, as ``POST /`` does (without a token).

        Rate limits per number and widget and the daily caps apply; the per-IP
        limit and the captcha apply only when ``client_ip`` is given. ``locale``
        (one of ``SDKAUTH_LOCALES``, default ``SDKAUTH_DEFAULT_LOCALE``) is the
        language of the session's messages.

        :returns: the request id. Raises the same exceptions as the HTTP operation.
        """
        return self.authenticator.send(
            _uuid("widgetId", widget_id),
            recipient,
            client_ip=client_ip,
            captcha_token=captcha_token,
            locale=locale,
        )


    def check_status_and_complete(self, request_id: uuid.UUID | str, recipient: str) -> bool:
        """The backend's final, security-critical check.

        ``True`` exactly once, for a confirmed session bound to ``recipient`` (any
        common notation of the same number); ``False`` before confirmation, after
        completion and for a closed (expired) session. Safe under concurrent calls:
        the completion is one conditional ``UPDATE``. Raises the contract errors of
        ``checkStatusAndComplete``: ``SessionNotFoundException``,
        ``PhoneNumberMismatchException``, ``ResendChannelException`` (the code
        expired unused), ``AttemptsExpiredException``,
        ``NoAvailableChannelsException``, and ``ValidateError`` for a malformed id
        or number.
        """
        return self.authenticator.check_status_and_complete(
            _uuid("requestId", request_id), recipient
        )

    def report_delivery(
        self, message_id: str, status: DeliveryStatus, *, reason: str | None = None
    ) -> None:
        """Tell the engine what a gateway reports of a message, from its webhook.

        ``message_id`` is the :attr:`Message.id` the sender passed to the gateway;
        ``status`` is ``"sent"``, ``"delivered"``, ``"read"`` or ``"failed"``.
        ``"failed"`` for the session's current launch moves it to the widget's next
        channel at once, as a sender's exception would (on the last channel the
        channel fails and the client may resend). Every report is kept in the
        session's history, with ``reason`` (the number removed from it); reports
        for earlier launches, repeats and unknown ids change nothing else and
        raise nothing.

        :raises ValueError: ``status`` is not one of the four.
        """
        self.engine.report_delivery(message_id, status, reason=reason)

    def sweep(self) -> int:
        """Relaunch the sessions whose launch has not finished within
        ``SDKAUTH_LAUNCH_DEADLINE`` (what ``flask sdkauth sweep`` and the Celery
        task ``flask_sdkauth.sweep`` run); return how many."""
        return self.engine.sweep()

    def verified_number(self, request_id: uuid.UUID | str) -> str | None:
        """The phone number a session proved, in E.164 (``"+79991234567"``), once
        it is confirmed or completed; ``None`` before that, after it closed, and for
        an unknown session.

        Use it as the user's identity after :meth:`check_status_and_complete`
        returned ``True``, rather than the number as the browser sent it: every
        notation of one number (``+7 (999) 123-45-67``, ``8 999 123 45 67``…) gives
        the same string. Raises ``ValidateError`` for a malformed id.
        """
        return self.authenticator.verified_number(_uuid("requestId", request_id))

    def audit_number_hash(self, number: str) -> str:
        """The ``number_hash`` the audit records carry for ``number`` (any notation
        the API accepts), to find one user's records without logging numbers.

        Needs an application context. Raises ``ValidateError`` for an invalid number.
        """
        authenticator = self.authenticator
        e164 = authenticator.normalise_recipient(number)
        return number_hash(authenticator.settings.code_secret, e164)

    def confirm(
        self, request_id: uuid.UUID | str, token: str, number: str | None = None
    ) -> bool:
        """Confirm a codeless channel, e.g. from a push provider's webhook.

        ``token`` is the message's ``confirmation_token``; with number matching
        ``number`` is the one the user picked. Returns ``True``; raises
        ``InvalidCodeException`` (wrong token, attempts left),
        ``AttemptsExpiredException`` (wrong number, or the last attempt) and the
        state errors of ``checkCode``.
        """
        return self.engine.confirm(_uuid("requestId", request_id), token, number)

    def confirmation_url(self, message: Message) -> str:
        """The absolute URL of the confirmation page for a codeless ``message``.

        Put it in the push or text; the page asks the user to pick the number the
        widget shows and confirms on their click. Needs a request context, which a
        sender has when the launch runs inline during an HTTP request; a sender run
        elsewhere (``sdkauth.send`` from a script, a queued launch) needs
        ``SERVER_NAME`` set.
        """
        if message.confirmation_token is None:
            raise ValueError("only codeless messages have a confirmation link")
        return url_for(
            f"{blp.name}.confirm_page",
            requestId=message.request_id,
            token=message.confirmation_token,
            choices=",".join(message.choices) or None,
            _external=True,
        )


def _upstream_token(hooks: Hooks, settings: Settings) -> str:
    if hooks.upstream_token_loader is not None:
        return hooks.upstream_token_loader()
    if settings.upstream_token is None:
        raise RuntimeError(
            "SDKAUTH_UPSTREAM_URL needs SDKAUTH_UPSTREAM_TOKEN or an "
            "@sdkauth.upstream_token_loader"
        )
    return settings.upstream_token


def _refuse_shadowing(app: Flask) -> None:
    found = find_shadowing(app, f"{blp.name}.")
    if found is not None:
        raise ShadowedRouteError(
            f"{found}. Mount the extension under a prefix of its own with "
            'SDKAUTH_URL_PREFIX (for example "/auth"), or move that route.'
        )


def _configured_dispatcher(name: str) -> Dispatcher:
    if name == "celery":
        try:
            from .dispatchers.celery import CeleryDispatcher
        except ImportError as exc:
            raise RuntimeError(
                'SDKAUTH_DISPATCHER = "celery" needs Celery: pip install "flask-sdkauth[celery]"'
            ) from exc
        return CeleryDispatcher()
    return InlineDispatcher()


def _uuid(field: str, value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ValidateError({field: ["Not a valid UUID."]}) from None


class _OwnApi(flask_smorest.Api):  # type: ignore[misc]  # untyped base
    """The Api the extension creates when the host brings none.

    It registers no error handlers: flask-smorest's would answer every
    ``HTTPException`` of the host's app in its own JSON shape. Nor does it document
    flask-smorest's default error body and pagination header (its ``Error`` and
    ``PaginationMetadata`` schemas), which our routes never return.
    """

    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        pass

    def _register_responses(self) -> None:
        pass

    def _register_pagination_header(self) -> None:
        pass


def _serve_swagger_ui_offline(app: Flask) -> None:
    """Point the own Api's Swagger UI at files the app serves, when none are set."""
    config = app.config
    if not config.get("SDKAUTH_OPENAPI_SWAGGER_UI_PATH") or config.get(
        "SDKAUTH_OPENAPI_SWAGGER_UI_URL"
    ):
        return
    if swagger_ui_bundle_folder() is None:
        logger.warning(
            "sdkauth: SDKAUTH_OPENAPI_SWAGGER_UI_PATH is set, but without "
            "SDKAUTH_OPENAPI_SWAGGER_UI_URL or swagger-ui-bundle there is no Swagger UI: "
            'pip install "flask-sdkauth[swagger-ui]"'
        )
        return
    docs = str(config.get("SDKAUTH_OPENAPI_URL_PREFIX") or "").strip("/")
    config["SDKAUTH_OPENAPI_SWAGGER_UI_URL"] = register_swagger_ui_assets(
        app, f"/{docs}{SWAGGER_UI_ASSETS_PATH}"
    )
