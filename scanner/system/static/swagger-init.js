// Kept out of the page so the Content-Security-Policy can refuse every inline script.
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.specUrl,
  dom_id: "#swagger-ui",
  // The default validator is a remote service: it would ask the internet about our document.
  validatorUrl: null,
  deepLinking: true,
});
