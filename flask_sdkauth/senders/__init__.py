"""Channel senders for real gateways, and for development.

One module per provider, each a small class configured by plain data and
registered with ``sdkauth.add_channel_sender(channel_type, sender)``; a provider
whose library is needed comes with an extra of its own
(``pip install 'flask-sdkauth[<provider>]'``). What they share is in
:mod:`~flask_sdkauth.senders.base`: how a gateway's refusal becomes an exception
that holds no code and no number, or a :class:`~flask_sdkauth.RetryDelivery`.
"""
