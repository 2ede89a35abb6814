"""The admin board at ``/api/jobs/board``: pages, a JSON API, actions, access control."""
