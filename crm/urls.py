from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from crm import views

workspace_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("settings/", views.workspace_settings, name="workspace_settings"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/invite/", views.member_invite, name="member_invite"),
    path("settings/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("settings/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("settings/availability/", views.my_availability, name="my_availability"),
    path("customers/", include("customers.urls")),
    path("integrations/", include("integrations.urls")),
    path("segments/", include("segments.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("support/", include("support.urls")),
    path("analytics/", include("analytics.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("w/<slug:workspace_slug>/", include(workspace_patterns)),
    path("", include("integrations.public_urls")),
    path("", include("campaigns.public_urls")),
    path("", include("support.public_urls")),
    path("admin/", admin.site.urls),
]

handler404 = "crm.error_views.not_found"
handler403 = "crm.error_views.forbidden"
handler500 = "crm.error_views.server_error"
