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
``resets_at``. A create naming fields the entity does not have (``removed_fields``, or never had)
is 400 ``invalid_field`` with the message ``Unknown field(s) for entity <entity>: <field>,
<field>`` (the fields in request order). Timestamps (``created_at``, ``completed_at``,
``expires_at``) are RFC 3339 UTC with milliseconds when they have any
(``2024-01-05T10:20:30.250Z``); ``completed_at - created_at`` is the job's server time exactly.
``server.py`` answers the routes, ``job_requests.py`` validates a create's body, ``settings.py``
holds this emulator's own knobs. The sandbox's controls (``/_sandbox/``) are the shared ones of
``sandbox/api.py``.
"""
