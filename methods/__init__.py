"""Method implementations (installed as ``vibench.methods``): one model family per file,
registered with :func:`vibench.registry.register_method`. Shared building blocks live once in
:mod:`vibench.methods.layers`, :mod:`vibench.methods.losses` and :mod:`vibench.methods.mixing`;
configs and metafiles in ``methods/configs/<name>/``."""
