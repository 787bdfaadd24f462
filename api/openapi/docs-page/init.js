/* global window, SwaggerUIBundle */
// Points Swagger UI at this server's own document (swagger-ui-dist's bundled initializer shows the
// petstore). No validator badge: it would send the document to validator.swagger.io.
window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
