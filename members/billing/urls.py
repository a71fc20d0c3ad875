from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("billing/", views.membership, name="membership"),
    path("billing/checkout/", views.checkout, name="checkout"),
    path("billing/checkout/done/", views.checkout_done, name="checkout_done"),
    path("billing/local/checkout/<uuid:checkout_id>/", views.local_checkout, name="local_checkout"),
    path("billing/cancel/", views.cancel, name="cancel"),
    path("billing/resume/", views.resume, name="resume"),
    path("billing/change/", views.change, name="change"),
    path("billing/change/cancel/", views.cancel_change, name="cancel_change"),
    path("billing/portal/", views.portal, name="portal"),
    path("billing/stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
