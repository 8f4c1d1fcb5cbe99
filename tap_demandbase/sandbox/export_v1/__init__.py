"""The ``export_v1`` emulator: the Data Export API of the OpenAPI contract.

Run with ``demandbase-sandbox`` (the default dialect) or ``Sandbox(SandboxSettings())``. Routes
(``Authorization: Bearer <token>`` required on every ``/export`` path; the name after the path is
the endpoint's key in ``http_errors`` and ``json_answers``)::

    GET    /export/v1/entities                  entities
    POST   /export/v1/jobs                      create    -> 202 ExportJob | 400 | 429
    GET    /export/v1/jobs?status&limit&offset  list      -> {"jobs": [...], "total": n}
    GET    /export/v1/jobs/{id}                 status    -> ExportJob | 404
    DELETE /export/v1/jobs/{id}                 cancel    -> 200 ExportJob | 404 | 409
    GET    /export/v1/jobs/{id}/download?part=N download  -> 302 to the files host | 200 CSV | 404

Errors are always JSON ``{"error": "<short_code>", "message": "<sentence>"}``; the quota 429 adds
``resets_at``. ``server.py`` answers the routes, ``job_requests.py`` validates a create's body,
``settings.py`` holds this emulator's own knobs. The sandbox's controls (``/_sandbox/``) are
the shared ones of ``sandbox/api.py``.
"""
