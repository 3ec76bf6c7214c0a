// Loaded before Redoc on the API's Redoc page (templates/drf_spectacular/redoc.html).
// Redoc's sidebar credit ("API docs by Redocly") draws an <img> from Redocly's CDN, and no Redoc
// option turns it off. The page loads everything from this origin, and the CSP allows images from
// 'self' and data: only, so that one image source becomes an empty data: image before the browser
// asks for it: no request leaves for a third party and the CSP has nothing to block. Every other
// image source, attribute and element is left as it was.
(function () {
  "use strict";
  var CREDIT_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  var EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E";
  var local = function (value) { return String(value) === CREDIT_LOGO ? EMPTY_IMAGE : value; };

  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src") value = local(value);
    return setAttribute.call(this, name, value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true, enumerable: src.enumerable, get: src.get,
    set: function (value) { src.set.call(this, local(value)); }
  });
})();
