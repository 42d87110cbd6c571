# Copied verbatim from the shared speed floors (bench README of the platform team, floor_django.py, measured 2026-12-04);
# the reference the send is judged against. Do not optimise: it is the floor.
"""Django floor: one JSON POST -> one INSERT -> JSON 201. Variant via DJFLOOR_DRF=1 (DRF APIView)."""
import os, uuid, json
import django
from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="x", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    MIDDLEWARE=[], INSTALLED_APPS=["rest_framework"] if os.environ.get("DJFLOOR_DRF") else [],
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": os.environ["DJ_DB"], "USER": "postgres",
                            "HOST": "127.0.0.1", "PORT": 5432, "CONN_MAX_AGE": 600}},
    REST_FRAMEWORK={"DEFAULT_AUTHENTICATION_CLASSES": [], "DEFAULT_PERMISSION_CLASSES": [],
                    "UNAUTHENTICATED_USER": None},
)
django.setup()
from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def _insert(phone):
    new_id = uuid.uuid4()
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("INSERT INTO floor_rows (id, body) VALUES (%s, %s) RETURNING created_at", (str(new_id), phone))
            created_at = cur.fetchone()[0]
    return {"id": str(new_id), "created_at": created_at.isoformat()}


@csrf_exempt
def insert(request):
    payload = json.loads(request.body)
    return JsonResponse(_insert(payload["phone_number"]), status=201)

urlpatterns = [path("insert", insert)]

if os.environ.get("DJFLOOR_DRF"):
    from rest_framework.views import APIView
    from rest_framework.response import Response

    class Insert(APIView):
        def post(self, request):
            return Response(_insert(request.data["phone_number"]), status=201)
    urlpatterns = [path("insert", Insert.as_view())]

from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
