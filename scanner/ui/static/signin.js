// Sign in with the API's own login: the same tokens, lockout and rate limits as any client.
"use strict";

Scanner.ready(() => {
  const form = document.getElementById("signin-form");
  const next = new URLSearchParams(location.search).get("next");
  // Only a path on this site: a crafted link must not send a fresh sign-in elsewhere.
  const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/files";
  if (Scanner.session.get()) location.replace(target);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    Scanner.notice("");
    try {
      const { body } = await Scanner.api("/api/auth/login", {
        method: "POST",
        anonymous: true,
        json: { username: form.username.value.trim(), password: form.password.value },
      });
      Scanner.session.set({ access_token: body.access_token, refresh_token: body.refresh_token });
      location.assign(target);
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
      form.password.select();
      button.disabled = false;
    }
  });
});
