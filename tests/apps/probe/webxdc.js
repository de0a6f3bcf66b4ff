// The app's own webxdc.js: a host must never serve this file.
window.APP_OWN_WEBXDC_JS_WAS_SERVED = true;
