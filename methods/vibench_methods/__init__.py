"""The built-in method implementations (package ``vibench_methods``): one model family per file,
each class registered through the ``vibench.methods`` entry-point group (pyproject.toml) and
:func:`vibench.registry.register_method`. Shared building blocks live once in
:mod:`vibench_methods.layers`, :mod:`vibench_methods.losses` and :mod:`vibench_methods.mixing`;
configs and metafiles in ``methods/vibench_methods/configs/<name>/``."""
