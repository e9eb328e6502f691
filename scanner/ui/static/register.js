// Create an account through the API, then sign in with it.
"use strict";

Scanner.ready(() => {
  const form = document.getElementById("register-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    Scanner.notice("");
    const username = form.username.value.trim();
    const password = form.password.value;
    try {
      await Scanner.api("/api/auth/register", {
        method: "POST",
        anonymous: true,
        json: { username, email: form.email.value.trim(), password },
      });
      const { body } = await Scanner.api("/api/auth/login", {
        method: "POST",
        anonymous: true,
        json: { username, password },
      });
      Scanner.session.set({ access_token: body.access_token, refresh_token: body.refresh_token });
      location.assign("/keys");
    } catch (error) {
      Scanner.notice(Scanner.errorText(error));
      button.disabled = false;
    }
  });
});
