from django.urls import include, path

from .views import crm, dashboard, imports

app_name = "analytics"

urlpatterns = [
    path("dashboard/", include(dashboard.urlpatterns)),
    path("crm/", include(crm.urlpatterns)),
    path("crm/import/", include(imports.urlpatterns)),
]
