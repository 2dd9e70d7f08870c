"""The operations picture (issue 13): a static HTML report of the change calendar, each change's
Art. 27 form as a document, register health, calendar data status and the Art. 20(7) filings.

``model`` gathers the facts from the signed policy, the calendar, the evidence folders, the
signed records and the register; ``form`` turns a change into the document a person signs off;
``records`` holds the signed records (MLPS filings, failure analyses); ``site`` renders the
Jinja2 templates into a folder that opens from the file system (no server, no network).
"""
